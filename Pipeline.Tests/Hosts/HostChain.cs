using System.Net;
using Shadowsocks.Pipeline.Tests.Loopback;
using static Shadowsocks.Pipeline.Tests.Loopback.CommandLine;

namespace Shadowsocks.Pipeline.Tests.Hosts;

/// <summary>The real program twice: a server and a local pointing at it, on free loopback ports, aes-256-gcm.</summary>
internal sealed class HostChain : IDisposable
{
    private HostChain(HostProcess server, IPEndPoint serverAt, HostProcess local, IPEndPoint localAt)
    {
        Server = server;
        ServerAt = serverAt;
        Local = local;
        LocalAt = localAt;
    }

    public HostProcess Server { get; }

    /// <summary>The server's Shadowsocks endpoint.</summary>
    public IPEndPoint ServerAt { get; }

    public HostProcess Local { get; }

    /// <summary>The local's SOCKS5 endpoint.</summary>
    public IPEndPoint LocalAt { get; }

    /// <summary>Starts both; <paramref name="serverArgs"/> and <paramref name="localArgs"/> are added to each command line.</summary>
    public static async Task<HostChain> StartAsync(IDictionary<string, string> environment, string password, string[]? serverArgs = null, string[]? localArgs = null)
    {
        var (server, serverAt) = await HostProcess.StartAsync(environment,
            ["server", "-s", "127.0.0.1", "-p", Port(LoopbackPorts.Next()), "-k", password, "-m", "aes-256-gcm", "--forbidden-ip", "", .. serverArgs ?? []]);
        try
        {
            var (local, localAt) = await HostProcess.StartAsync(environment,
                ["local", "-s", "127.0.0.1", "-p", Port(serverAt.Port), "-b", "127.0.0.1", "-l", Port(LoopbackPorts.Next()), "-k", password, "-m", "aes-256-gcm", .. localArgs ?? []]);
            return new HostChain(server, serverAt, local, localAt);
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Local.Dispose();
        Server.Dispose();
    }
}
