using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Tests.Loopback;

namespace Shadowsocks.Pipeline.Tests.Core.Dns;

/// <summary>
/// A real dnsmasq on a loopback port with records of its own, authoritative for <c>.test</c> (unknown names there
/// are NXDOMAIN; text-only.test has a TXT record and no address; names outside <c>.test</c> are REFUSED: it has no
/// upstream). A missing dnsmasq fails the tests loudly: CI installs dnsmasq-base. Names of a test's own go in its
/// hosts file (<see cref="SetHosts"/>), with <c>localTtl</c> as their TTL.
/// </summary>
internal sealed class DnsmasqFixture : IDisposable
{
    public const string Web = "web.test";

    private readonly Process _process;
    private readonly string _hostsFile;

    /// <param name="localTtl">The TTL of the hosts file's names (and of the <c>--host-record</c> ones without their own), in seconds.</param>
    /// <param name="authTtl">
    /// When given, dnsmasq serves <c>.test</c> as an authoritative server (<c>--auth-zone</c>) instead of a local
    /// domain: its negative answers then carry the zone's SOA, whose TTL and MINIMUM are both this, in seconds (without
    /// it, they carry no SOA); its positive answers have this TTL too.
    /// </param>
    public DnsmasqFixture(int localTtl = 300, int? authTtl = null)
    {
        var path = new[] { "/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("dnsmasq not found: apt-get install dnsmasq-base (.ci/run does)");
        _hostsFile = Path.GetTempFileName();
        File.WriteAllLines(_hostsFile, ManyTest);
        for (var attempt = 0; ; attempt++)
        {
            Port = LoopbackPorts.Next(); // dnsmasq binds UDP and TCP
            var info = new ProcessStartInfo(path) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            string[] args =
            [
                "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--user=root", "--pid-file=",
                $"--port={Port.ToString(CultureInfo.InvariantCulture)}", "--listen-address=127.0.0.1", "--bind-interfaces",
                .. Zone(authTtl), $"--addn-hosts={_hostsFile}", $"--local-ttl={localTtl.ToString(CultureInfo.InvariantCulture)}",
                "--host-record=a.test,10.1.2.3", "--host-record=v6.test,fd00::1", "--host-record=dual.test,10.1.2.4,fd00::4",
                "--host-record=short.test,10.9.9.9,1", $"--host-record={Web},127.0.0.1",
                "--cname=alias.test,chain.test", "--cname=chain.test,a.test", "--txt-record=text-only.test,nothing",
            ];
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }

            _process = Process.Start(info)!;
            if (WaitReady())
            {
                return;
            }

            var log = _process.HasExited ? _process.StandardError.ReadToEnd() : "no answer";
            _process.Kill();
            _process.Dispose();
            if (attempt == 5)
            {
                throw new InvalidOperationException($"dnsmasq did not start on port {Port}: {log}");
            }
        }
    }

    public int Port { get; private set; }

    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    /// <summary>
    /// Replaces the test's own hosts lines (<c>ADDRESS NAME</c>; many.test stays) and has dnsmasq read them again
    /// (SIGHUP: it also clears its cache). It answers with them a moment later: wait for what they change.
    /// </summary>
    public void SetHosts(params string[] lines)
    {
        File.WriteAllLines(_hostsFile, [.. ManyTest, .. lines]);
        using var hangUp = Process.Start("kill", ["-HUP", _process.Id.ToString(CultureInfo.InvariantCulture)]);
        hangUp.WaitForExit();
        Assert.Equal(0, hangUp.ExitCode);
    }

    public void Dispose()
    {
        try
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
        File.Delete(_hostsFile);
    }

    private static string[] Zone(int? authTtl) => authTtl is { } ttl
        ? ["--auth-server=ns.test,127.0.0.1", "--auth-zone=test", $"--auth-ttl={ttl.ToString(CultureInfo.InvariantCulture)}"]
        : ["--local=/test/"];

    private static IEnumerable<string> ManyTest => Enumerable.Range(1, 12).Select(i => $"10.20.0.{i} many.test");

    /// <summary>Asks for a.test until dnsmasq answers (it answers as soon as it listens).</summary>
    private bool WaitReady()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 100 };
        var query = new byte[64];
        var length = Pipeline.Core.Dns.DnsMessage.WriteQuery(7, "a.test", Pipeline.Core.Dns.DnsRecordType.A, query);
        var answer = new byte[512];
        for (var i = 0; i < 50 && !_process.HasExited; i++)
        {
            socket.SendTo(query.AsSpan(0, length), EndPoint);
            try
            {
                if (socket.Receive(answer) > 0)
                {
                    return true;
                }
            }
            catch (SocketException)
            {
                // Not listening yet.
            }
        }

        return false;
    }
}
