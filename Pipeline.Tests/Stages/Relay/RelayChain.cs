using System.Net;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>Our server plus our local (and optionally a tunnel) on loopback, in this process, on free ports.</summary>
internal sealed class RelayChain : IAsyncDisposable
{
    private RelayChain(ServerTcpRelay server, LocalTcpRelay local, TunnelRelay? tunnel)
    {
        Server = server;
        Local = local;
        Tunnel = tunnel;
    }

    public ServerTcpRelay Server { get; }

    public LocalTcpRelay Local { get; }

    public TunnelRelay? Tunnel { get; }

    public static RelayOptions Options(string method, string password, IPEndPoint listen, EndPoint? server = null)
    {
        Assert.True(CipherCatalog.TryGet(method, out var cipher), $"method {method} missing from the catalog");
        return new RelayOptions
        {
            Listen = listen,
            Cipher = cipher,
            MasterKey = KeyDerivation.MasterKeyFromPassword(cipher, password),
            Server = server,
            IdleTimeout = TimeSpan.FromSeconds(30),
            HandshakeTimeout = TimeSpan.FromSeconds(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
        };
    }

    /// <param name="tune">Applied to the server's and the clients' options alike (e.g. <c>o => o with { FastOpen = true }</c>).</param>
    /// <param name="resolver">The server's resolver (the system's by default).</param>
    public static RelayChain Start(
        string method, string password = "test-password", string? localPassword = null, ShadowsocksAddress? tunnelTo = null, Func<RelayOptions, RelayOptions>? tune = null,
        IDnsResolver? resolver = null)
    {
        tune ??= static options => options;
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        var server = new ServerTcpRelay(tune(Options(method, password, loopback)), resolver ?? new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        server.Start();
        var clientOptions = tune(Options(method, localPassword ?? password, loopback, server.LocalEndPoint));
        var local = new LocalTcpRelay(clientOptions, ProgramScheduler.Instance, TimeProvider.System);
        local.Start();
        TunnelRelay? tunnel = null;
        if (tunnelTo is { } destination)
        {
            tunnel = new TunnelRelay(clientOptions with { TunnelDestination = destination }, ProgramScheduler.Instance, TimeProvider.System);
            tunnel.Start();
        }

        return new RelayChain(server, local, tunnel);
    }

    public async ValueTask DisposeAsync()
    {
        if (Tunnel is not null)
        {
            await Tunnel.DisposeAsync();
        }

        await Local.DisposeAsync();
        await Server.DisposeAsync();
    }
}
