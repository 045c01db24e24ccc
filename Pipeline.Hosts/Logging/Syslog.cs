using System.Globalization;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Hosts.Logging;

/// <summary>
/// Lines to the local syslog daemon (rsyslog, or systemd-journald's <c>/dev/log</c>), as glibc's <c>syslog(3)</c>
/// sends them: one datagram each, <c>&lt;PRI&gt;Mmm dd hh:mm:ss IDENT[PID]: line</c>, facility user (ss-libev's in the
/// background). Never in the way of the relay: the socket does not block (a line the daemon has no room for is
/// dropped and counted), and a daemon that is not there is looked for again at most every <see cref="RetryAfter"/>.
/// </summary>
internal sealed class Syslog : IDisposable
{
    public const string DefaultPath = "/dev/log";

    /// <summary>Where the lines go instead of <see cref="DefaultPath"/> (for tests; not a <c>SHADOWSOCKS_</c> setting).</summary>
    public const string PathVariable = "SSPIPELINE_SYSLOG_SOCKET";

    public const int Critical = 2;
    public const int Error = 3;
    public const int Warning = 4;
    public const int Informational = 6;
    public const int Debug = 7;

    private const int FacilityUser = 1;

    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly string _path;
    private readonly string _ident;
    private readonly TimeProvider _time;
    private Socket? _socket;
    private DateTimeOffset _lookAgainAt;
    private long _dropped;

    public Syslog(string path, string ident, TimeProvider time)
    {
        _path = path;
        _ident = $"{ident}[{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}]: ";
        _time = time;
    }

    /// <summary>The process's, at <see cref="PathVariable"/> or <see cref="DefaultPath"/>.</summary>
    public static Syslog ForProcess() =>
        new(Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } path ? path : DefaultPath, "shadowsocks", TimeProvider.System);

    /// <summary>Where the lines go.</summary>
    public string Path => _path;

    /// <summary>Whether a daemon listens there now (connecting if not yet).</summary>
    public bool Reachable()
    {
        lock (_gate)
        {
            return Connected(_time.GetLocalNow()) is not null;
        }
    }

    /// <summary>Lines the daemon had no room for, or that found no daemon.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Sends <paramref name="line"/> at <paramref name="severity"/> (RFC 5424's numbers: 3 error … 7 debug).</summary>
    public void Send(int severity, string line)
    {
        var now = _time.GetLocalNow();
        var message = string.Create(
            CultureInfo.InvariantCulture,
            $"<{(FacilityUser * 8) + severity}>{now.ToString("MMM", CultureInfo.InvariantCulture)} {now.Day,2} {now:HH:mm:ss} {_ident}{line}");
        var bytes = System.Text.Encoding.UTF8.GetBytes(message);
        lock (_gate)
        {
            if (Connected(now) is not { } socket)
            {
                _dropped++;
                return;
            }

            socket.Send(bytes, SocketFlags.None, out var error);
            if (error == SocketError.Success)
            {
                return;
            }

            _dropped++;
            if (error != SocketError.WouldBlock)
            {
                // The daemon went away (restarted): look for it again with the next line.
                socket.Dispose();
                _socket = null;
            }
        }
    }

    private Socket? Connected(DateTimeOffset now)
    {
        if (_socket is not null || now < _lookAgainAt)
        {
            return _socket;
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(_path));
            return _socket = socket;
        }
        catch (SocketException)
        {
            socket.Dispose();
            _lookAgainAt = now + RetryAfter;
            return null;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _socket?.Dispose();
            _socket = null;
        }
    }
}
