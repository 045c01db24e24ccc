using System.Net.Sockets;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Tests.Stages.Connections;

public sealed class DestinationFailureTests
{
    [Theory]
    [InlineData(SocketError.ConnectionRefused, "refused")]
    [InlineData(SocketError.TimedOut, "timed_out")]
    [InlineData(SocketError.NetworkUnreachable, "unreachable")]
    [InlineData(SocketError.HostUnreachable, "unreachable")]
    [InlineData(SocketError.AddressNotAvailable, "unreachable")]
    public void Of_AConnectError_IsOneOfTheFixedReasons(SocketError error, string reason) =>
        Assert.Equal(reason, DestinationFailure.Of(error));
}
