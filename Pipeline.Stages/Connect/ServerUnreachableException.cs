using System.Net;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>
/// <see cref="ServerFailover.ConnectAsync"/>'s failure: no server answered. <see cref="Exception.InnerException"/> is
/// the last attempt's failure (its message is this one's), <see cref="Server"/> the server it was made to.
/// </summary>
internal sealed class ServerUnreachableException(EndPoint server, Exception failure) : Exception(failure.Message, failure)
{
    public EndPoint Server { get; } = server;
}
