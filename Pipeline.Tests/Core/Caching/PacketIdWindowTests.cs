using Shadowsocks.Pipeline.Core.Caching;

namespace Shadowsocks.Pipeline.Tests.Core.Caching;

public sealed class PacketIdWindowTests
{
    [Fact]
    public void EachId_IsTakenOnce_InAnyOrderWithinTheWindow()
    {
        var window = new PacketIdWindow();
        var ids = Enumerable.Range(0, 3000).Select(i => (ulong)i).ToArray();
        new Random(1).Shuffle(ids.AsSpan(0, 500)); // reordered, but never more than the window apart
        foreach (var id in ids)
        {
            Assert.True(window.TryTake(id), $"first {id}");
            Assert.False(window.TryTake(id), $"again {id}");
        }
    }

    [Fact]
    public void AnIdAWindowOrMoreBehindTheHighest_IsRefused()
    {
        var window = new PacketIdWindow();
        Assert.True(window.TryTake(5000));
        Assert.True(window.TryTake(5000 - PacketIdWindow.Size + 1));
        Assert.False(window.TryTake(5000 - PacketIdWindow.Size));
        Assert.False(window.TryTake(0));
    }

    [Fact]
    public void AJumpForward_ForgetsOnlyWhatLeftTheWindow()
    {
        var window = new PacketIdWindow();
        for (ulong id = 0; id < 100; id++)
        {
            Assert.True(window.TryTake(id));
        }

        Assert.True(window.TryTake(1050)); // ids 0..26 are now out of the window; 27..99 still taken
        Assert.False(window.TryTake(26));
        Assert.False(window.TryTake(27));
        Assert.False(window.TryTake(99));
        Assert.True(window.TryTake(100));
        Assert.True(window.TryTake(1049));
        Assert.True(window.TryTake(ulong.MaxValue)); // a jump past the window clears it
        Assert.False(window.TryTake(1049));
        Assert.True(window.TryTake(ulong.MaxValue - 1));
    }
}
