using System.Buffers.Binary;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Core.Caching;

public sealed class RecentSaltsTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void ASaltSeenWithinTheWindow_IsARepeat_AndAFreshOneIsNot(int size)
    {
        var salts = new RecentSalts(TimeSpan.FromSeconds(60), new ManualTimeProvider());
        var salt = Salt(size, 1);

        Assert.True(salts.TryAdd(salt));
        Assert.False(salts.TryAdd(salt));
        Assert.True(salts.TryAdd(Salt(size, 2)));
        Assert.False(salts.TryAdd(Salt(size, 2)));
    }

    [Fact]
    public void SaltsDifferingInOneByteAnywhere_AreDistinct()
    {
        var salts = new RecentSalts(TimeSpan.FromSeconds(60), new ManualTimeProvider());
        var first = Salt(32, 7);
        Assert.True(salts.TryAdd(first));
        for (var i = 0; i < first.Length; i++)
        {
            var other = (byte[])first.Clone();
            other[i] ^= 0x80;
            Assert.True(salts.TryAdd(other), $"byte {i}");
        }

        Assert.Equal(33, salts.Count);
    }

    [Fact]
    public void ASalt_IsForgottenOnlyAfterTheRetention()
    {
        var time = new ManualTimeProvider();
        var salts = new RecentSalts(TimeSpan.FromSeconds(60), time);
        Assert.True(salts.TryAdd(Salt(16, 1)));

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.False(salts.TryAdd(Salt(16, 1)));
        Assert.True(salts.TryAdd(Salt(16, 2)));

        time.Advance(TimeSpan.FromSeconds(1)); // the first is 60 s old: gone; the second is 1 s old
        Assert.True(salts.TryAdd(Salt(16, 1)));
        Assert.False(salts.TryAdd(Salt(16, 2)));
        Assert.Equal(2, salts.Count);
    }

    [Fact]
    public void ASalt_OutlivesEveryMomentItsTimestampStillPasses()
    {
        // A request stamped s passes the ±30 s check (whole seconds, edge included) from s − 30 until just before
        // s + 31. Accepted at 0.9 s past the second s − 30, its salt must still be remembered at 0.95 s past s + 30,
        // when the same request would pass again: 60.05 s later. At a 60 s retention it was forgotten by then.
        var time = new ManualTimeProvider();
        time.Advance(TimeSpan.FromMilliseconds(900));
        var salts = new RecentSalts(SaltFilters.Retention2022, time);
        var stamp = time.GetUtcNow().ToUnixTimeSeconds() + 30;
        Span<byte> header = stackalloc byte[9];
        BinaryPrimitives.WriteUInt64BigEndian(header[1..], (ulong)stamp);
        Assert.True(Aead2022Framing.HasFreshTime(header, time));
        Assert.True(salts.TryAdd(Salt(32, 9)));

        time.Advance(TimeSpan.FromMilliseconds(60_050));

        Assert.True(Aead2022Framing.HasFreshTime(header, time));
        Assert.False(salts.TryAdd(Salt(32, 9)));
        time.Advance(TimeSpan.FromMilliseconds(950));
        Assert.False(Aead2022Framing.HasFreshTime(header, time)); // and once it is forgotten, the stamp no longer passes
    }

    [Fact]
    public void AfterABurst_TheStoreShrinksOnceItsSaltsExpire()
    {
        var time = new ManualTimeProvider();
        var salts = new RecentSalts(TimeSpan.FromSeconds(60), time);
        for (var i = 0; i < 50_000; i++)
        {
            Assert.True(salts.TryAdd(Salt(32, i)));
        }

        var peak = salts.Capacity;
        Assert.True(peak >= 50_000);

        time.Advance(TimeSpan.FromSeconds(61));
        Assert.True(salts.TryAdd(Salt(32, -1))); // the next connection sweeps the expired ones

        Assert.Equal(1, salts.Count);
        Assert.True(salts.Capacity < 100, $"capacity {salts.Capacity} after the burst expired (peak {peak})");
        Assert.False(salts.TryAdd(Salt(32, -1)));
    }

    [Fact]
    public void ManyThreadsAddingTheSameSalts_AdmitEachExactlyOnce()
    {
        var salts = new RecentSalts(TimeSpan.FromSeconds(60), new ManualTimeProvider());
        var admitted = 0;
        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 2_000; i++)
            {
                if (salts.TryAdd(Salt(32, i)))
                {
                    Interlocked.Increment(ref admitted);
                }
            }
        });

        Assert.Equal(2_000, admitted);
    }

    private static byte[] Salt(int size, int seed)
    {
        var salt = new byte[size];
        new Random(seed).NextBytes(salt);
        return salt;
    }
}
