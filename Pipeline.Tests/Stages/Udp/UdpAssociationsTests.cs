using System.Net;
using Shadowsocks.Pipeline.Stages.Udp;

namespace Shadowsocks.Pipeline.Tests.Stages.Udp;

/// <summary>
/// Which association a client endpoint belongs to, and which endpoints end with it: several associations from one
/// address (every client on loopback) each take their own endpoints with them.
/// </summary>
public sealed class UdpAssociationsTests
{
    private static readonly IPAddress s_address = IPAddress.Loopback;

    [Fact]
    public void Ending_EndsOnlyItsOwnEndpoints_WhileAnotherFromTheSameAddressLives()
    {
        var ended = new List<IPEndPoint>();
        var associations = new UdpAssociations(endpoints => ended.AddRange(endpoints));
        using var first = associations.Register(s_address, 0);
        var second = associations.Register(s_address, 0);
        var a = new IPEndPoint(s_address, 40_001);
        var b = new IPEndPoint(s_address, 40_002);

        Assert.True(associations.Attach(a)); // the oldest with no endpoint yet: first
        Assert.True(associations.Attach(b)); // then second
        second.Dispose();

        Assert.Equal([b], ended);
        Assert.True(associations.Contains(s_address));
        first.Dispose();
        Assert.Equal([b, a], ended);
        Assert.False(associations.Contains(s_address));
    }

    [Fact]
    public void TheAddressARequestNamed_HoldsTheAssociationToo_AndEndsWithIt()
    {
        var ended = new List<IPEndPoint>();
        var associations = new UdpAssociations(endpoints => ended.AddRange(endpoints));
        var named = IPAddress.Parse("127.0.0.2");
        var registration = associations.Register(s_address, 0, named);
        using var unnamed = associations.Register(IPAddress.Parse("127.0.0.3"), 0, IPAddress.Any); // 0.0.0.0: not said
        var client = new IPEndPoint(named, 40_010);

        Assert.True(associations.Contains(named));
        Assert.False(associations.Contains(IPAddress.Any));
        Assert.True(associations.Attach(client));
        registration.Dispose();

        Assert.Equal([client], ended);
        Assert.False(associations.Contains(named));
        Assert.False(associations.Contains(s_address));
        Assert.False(associations.Attach(client));
    }

    [Fact]
    public void ADetachedEndpoint_IsNoLongerTheAssociations_AndIsAttachedAfreshIfItComesBack()
    {
        var ended = new List<IPEndPoint>();
        var associations = new UdpAssociations(endpoints => ended.AddRange(endpoints));
        using var first = associations.Register(s_address, 0);
        var second = associations.Register(s_address, 40_007);
        var client = new IPEndPoint(s_address, 40_001);

        Assert.True(associations.Attach(client)); // first: the oldest with none yet
        associations.Detach(client); // its NAT entry expired
        Assert.Equal(0, associations.AttachedCount);
        Assert.True(associations.Attach(client)); // back: first again (still the oldest with none)
        second.Dispose();

        Assert.Empty(ended); // not second's
        Assert.Equal(1, associations.AttachedCount);
    }

    [Fact]
    public void Attach_PrefersTheAssociationThatNamedThePort()
    {
        var ended = new List<IPEndPoint>();
        var associations = new UdpAssociations(endpoints => ended.AddRange(endpoints));
        using var unnamed = associations.Register(s_address, 0);
        var named = associations.Register(s_address, 40_005);
        var client = new IPEndPoint(s_address, 40_005);

        Assert.True(associations.Attach(client));
        named.Dispose();

        Assert.Equal([client], ended);
    }

    [Fact]
    public void Attach_AnotherAddress_IsRefused_AndAnEndedAssociationIsForgotten()
    {
        var associations = new UdpAssociations(_ => { });
        var registration = associations.Register(s_address, 0);

        Assert.False(associations.Attach(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 40_001)));
        registration.Dispose();
        Assert.False(associations.Attach(new IPEndPoint(s_address, 40_001)));
        Assert.False(associations.Contains(s_address));
    }

    [Fact]
    public void Attach_AnEndpointBeyondTheFreeAssociations_GoesToTheNewest_AndEndsWithIt()
    {
        var ended = new List<IPEndPoint>();
        var associations = new UdpAssociations(endpoints => ended.AddRange(endpoints));
        using var first = associations.Register(s_address, 0);
        var second = associations.Register(s_address, 0);
        var a = new IPEndPoint(s_address, 40_001);
        var b = new IPEndPoint(s_address, 40_002);
        var c = new IPEndPoint(s_address, 40_003);
        associations.Attach(a);
        associations.Attach(b);

        Assert.True(associations.Attach(c));
        Assert.True(associations.Attach(c)); // already attached: stays where it is
        second.Dispose();

        Assert.Equal([b, c], ended.Order(Comparer<IPEndPoint>.Create((x, y) => x.Port.CompareTo(y.Port))));
    }
}
