using System.Net;
using System.Net.Sockets;
using System.Text;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Relay;
using Shadowsocks.Pipeline.Tests.Core.Scheduling;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary><c>shadowsocks tunnel</c> over TCP, as its users meet it.</summary>
public sealed class TunnelRelayTests
{
    private const string Password = "tunnel-password";
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(30);

    /// <summary>
    /// SMTP, FTP, POP3 and SSH servers speak first: the client sends nothing until it has the banner. The tunnel sends
    /// the header alone once its wait for first data ends, and the banner comes back; then the dialogue goes on.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)] // ss-server
    public async Task ADestinationThatSpeaksFirst_ReachesAClientThatSendsNothingUntilItHasTheBanner(bool libevServer)
    {
        using var cancel = new CancellationTokenSource(s_deadline);
        using var destination = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        destination.Listen();
        var dialogue = Task.Run(async () =>
        {
            using var accepted = await destination.AcceptAsync(cancel.Token);
            await accepted.SendAsync("220 ready\r\n"u8.ToArray(), SocketFlags.None, cancel.Token);
            var command = await ReadLineAsync(accepted, cancel.Token);
            await accepted.SendAsync("221 bye\r\n"u8.ToArray(), SocketFlags.None, cancel.Token);
            return command;
        });

        await using var ourServer = libevServer ? null : new ServerTcpRelay(RelayChain.Options("aes-256-gcm", Password, Loopback()), new SystemDnsResolver(), ProgramScheduler.Instance, TimeProvider.System);
        ourServer?.Start();
        await using var theirServer = libevServer ? await LibevPeer.StartAsync("ss-server", "-s", "127.0.0.1", "-k", Password, "-m", "aes-256-gcm", "-t", "60") : null;
        var server = ourServer?.LocalEndPoint ?? theirServer!.EndPoint;
        var options = RelayChain.Options("aes-256-gcm", Password, Loopback(), server) with
        {
            TunnelDestination = ShadowsocksAddress.FromEndPoint((IPEndPoint)destination.LocalEndPoint!),
        };
        await using var tunnel = new TunnelRelay(options, ProgramScheduler.Instance, TimeProvider.System);
        tunnel.Start();

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(tunnel.LocalEndPoint, cancel.Token);
        Assert.Equal("220 ready\r\n", await ReadLineAsync(client, cancel.Token));

        // No half-close: ss-server ends the whole connection on its client's FIN.
        await client.SendAsync("QUIT\r\n"u8.ToArray(), SocketFlags.None, cancel.Token);
        Assert.Equal("221 bye\r\n", Encoding.ASCII.GetString(await Socks5TestClient.ReadToEndAsync(client, cancel.Token)));
        Assert.Equal("QUIT\r\n", await dialogue);
    }

    private static async Task<string> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (!line.ToString().EndsWith('\n'))
        {
            var got = await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken);
            Assert.True(got > 0, $"the connection closed after '{line}', before a whole line");
            line.Append((char)one[0]);
        }

        return line.ToString();
    }

    private static IPEndPoint Loopback() => new(IPAddress.Loopback, 0);
}
