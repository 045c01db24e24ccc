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

    /// <summary>The longest line sent whole (rsyslog's default message size); longer ones are cut, not dropped.</summary>
    public const int MaxLineBytes = 8192;

    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly string _path;
    private readonly string _ident;
    private readonly TimeProvider _time;
    private Socket? _socket;
    private bool _stream;
    private bool _disposed;
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

    /// <summary>
    /// Sends <paramref name="line"/> at <paramref name="severity"/> (RFC 5424's numbers: 3 error … 7 debug). Never
    /// throws and never waits: a line that cannot go is counted in <see cref="Dropped"/>.
    /// </summary>
    public void Send(int severity, string line)
    {
        var now = _time.GetLocalNow();
        var message = string.Create(
            CultureInfo.InvariantCulture,
            $"<{(FacilityUser * 8) + severity}>{now.ToString("MMM", CultureInfo.InvariantCulture)} {now.Day,2} {now:HH:mm:ss} {_ident}{line}");
        var encoded = System.Text.Encoding.UTF8.GetBytes(message);
        var length = encoded.Length;
        if (length > MaxLineBytes)
        {
            length = MaxLineBytes;
            while (length > 0 && (encoded[length] & 0xC0) == 0x80)
            {
                length--; // not in the middle of a character
            }
        }

        lock (_gate)
        {
            if (Connected(now) is not { } socket)
            {
                _dropped++;
                return;
            }

            // A stream /dev/log (some daemons) takes each message with a NUL after it, as glibc's syslog(3) frames it.
            var bytes = _stream ? [.. encoded.AsSpan(0, length), (byte)0] : encoded.AsSpan(0, length);
            try
            {
                var sent = socket.Send(bytes, SocketFlags.None, out var error);
                if (error == SocketError.Success && sent == bytes.Length)
                {
                    return;
                }

                _dropped++;
                if (_stream || (error != SocketError.WouldBlock && error != SocketError.MessageSize))
                {
                    // The daemon went away (restarted), or a stream took a message in part (it must not carry half a
                    // message) or not at all: start afresh with the next line.
                    Disconnect();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                _dropped++;
                Disconnect();
            }
        }
    }

    private Socket? Connected(DateTimeOffset now)
    {
        if (_socket is not null || _disposed || now < _lookAgainAt)
        {
            return _socket;
        }

        // A datagram socket, as most daemons listen; a stream one where the path is a stream socket (connecting a
        // datagram socket to it fails with EPROTOTYPE), as glibc falls back.
        foreach (var type in (ReadOnlySpan<SocketType>)[SocketType.Dgram, SocketType.Stream])
        {
            Socket? socket = null;
            try
            {
                socket = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
                socket.Connect(new UnixDomainSocketEndPoint(_path));
                socket.Blocking = false;
                _stream = type == SocketType.Stream;
                return _socket = socket;
            }
            catch (Exception e) when (e is SocketException or ArgumentException)
            {
                // Not there, not this type, or no descriptor left: try the other type, then again later.
                socket?.Dispose();
                if (e is not SocketException { SocketErrorCode: SocketError.ProtocolType })
                {
                    break;
                }
            }
        }

        _lookAgainAt = now + RetryAfter;
        return null;
    }

    private void Disconnect()
    {
        _socket?.Dispose();
        _socket = null;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            Disconnect();
        }
    }
}
