using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Stages.Connect;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Local and tunnel: where the UDP relay sends to the server. A server given by name is looked up again as the TCP
/// side's connections look it up: through the program's resolver, which keeps an answer for its TTL. Not per
/// datagram: while datagrams flow, at most once every <see cref="CheckInterval"/>, the resolver is asked what it knows
/// at once (the hosts file, its cache); when the cached answer has expired a lookup starts in the background and the
/// datagrams go on to the address in use until it answers. An answer that still holds the address in use keeps it (a
/// name with several addresses does not move back and forth); one that does not moves to its first address and raises
/// <see cref="Changed"/>, where the relay closes its NAT entries (their sockets are connected to the old address) and
/// ends its 2022 client sessions, so the next datagrams open new ones to the new address. A lookup that fails keeps the address in use.
/// With several servers, UDP goes to one of them, and with <see cref="Follow"/> it follows the TCP side's circuits:
/// when the server in use is skipped (its circuit opened), UDP moves to the first server, in order, that is not; when
/// an earlier server answers again (its circuit closed), UDP moves back to it. Each move raises <see cref="Moved"/> (the
/// host's line) and <see cref="Changed"/>, and is counted in <see cref="PipelineTelemetry.UdpServerMoves"/> (away or back); a server given by name is reached at the address TCP last reached it at, or
/// the one UDP used before, or else is looked up as above, the datagrams going on to the old address meanwhile.
/// </summary>
/// <remarks>
/// Before, the name was looked up once at start and kept: a server on a dynamic DNS name lost UDP when its address
/// changed, until a restart, while TCP followed it. And UDP stayed with the server it started with when that one
/// stopped answering, while TCP failed over.
/// </remarks>
internal sealed class UdpServerAddress
{
    /// <summary>How often, at most, the resolver is asked again while datagrams flow: the resolver's shortest TTL (1 s).</summary>
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly EndPoint[] _servers; // as given, in order: an IPEndPoint or a DnsEndPoint each
    private readonly IPEndPoint?[] _found; // the address each was last sent to (null: not yet)
    private readonly IDnsResolver? _resolver;
    private readonly TimeProvider _time;
    private ServerFailover? _followed;
    private int _inUse;
    private string? _host; // the server in use's name (null: given by address)
    private int _port;
    private IPEndPoint _address;
    private long _checkAt;
    private IPAddress[]? _answered; // a background lookup's answer for _host, taken at the next check
    private int _lookingUp;

    /// <summary>A server given by address: it never changes.</summary>
    public UdpServerAddress(IPEndPoint address)
        : this([address], 0, address, null, TimeProvider.System)
    {
    }

    /// <summary>A server given by name (<paramref name="host"/>), found at <paramref name="first"/> at start.</summary>
    public UdpServerAddress(string host, IPEndPoint first, IDnsResolver resolver, TimeProvider time)
        : this([new DnsEndPoint(host, first.Port)], 0, first, resolver, time)
    {
    }

    /// <summary>
    /// Several servers (<paramref name="servers"/>, in order, as TCP's <see cref="ServerFailover"/> has them), UDP going
    /// to the one at <paramref name="inUse"/>, found at <paramref name="found"/> at start; <paramref name="resolver"/>
    /// looks up those given by name (null when none is).
    /// </summary>
    public UdpServerAddress(IReadOnlyList<EndPoint> servers, int inUse, IPEndPoint found, IDnsResolver? resolver, TimeProvider time)
    {
        _servers = [.. servers];
        _found = new IPEndPoint?[_servers.Length];
        _inUse = inUse;
        _host = (_servers[inUse] as DnsEndPoint)?.Host;
        _address = DualStack.Unmapped(found); // ::ffff:a.b.c.d is reached as a.b.c.d: .NET's IPv6 sockets are IPv6-only
        _port = found.Port;
        _found[inUse] = _address;
        _resolver = resolver;
        _time = time;
        _checkAt = time.GetTimestamp() + CheckTicks();
    }

    /// <summary>
    /// Raised when the server's address has changed; it is the new one. On the thread that asked <see cref="Current"/>,
    /// or, for a move to another server, on the thread of the TCP connection whose attempt changed a circuit.
    /// </summary>
    public event Action<IPEndPoint>? Changed;

    /// <summary>
    /// Raised when UDP moves to another server (<see cref="Follow"/>): from, to, and whether it moves because the server
    /// it leaves was skipped (<c>true</c>), or because the one it goes to, an earlier one, answers again (<c>false</c>).
    /// After <see cref="Changed"/>, on the thread of the TCP connection whose attempt changed the circuit.
    /// </summary>
    public event Action<EndPoint, EndPoint, bool>? Moved;

    /// <summary>The address in use, without asking anything (for a NAT entry's socket being opened).</summary>
    public IPEndPoint Address => Volatile.Read(ref _address);

    /// <summary>The address to send a datagram to now: <see cref="Address"/>, checked again when a check is due.</summary>
    public IPEndPoint Current =>
        Volatile.Read(ref _host) is null || _time.GetTimestamp() < Volatile.Read(ref _checkAt) ? Volatile.Read(ref _address) : Check();

    /// <summary>
    /// Follows the circuits of TCP's <paramref name="servers"/> (the same servers, in the same order): UDP leaves a server
    /// that is skipped for the first that is not, and goes back to an earlier one that answers again. Once per outage, as
    /// the circuits change; no datagram asks anything. When every server is skipped, UDP stays where it is until one
    /// answers again, whichever it is.
    /// </summary>
    public void Follow(ServerFailover servers)
    {
        _followed = servers;
        servers.CircuitChanged += OnCircuitChanged;
    }

    private void OnCircuitChanged(EndPoint server, bool open)
    {
        EndPoint from;
        EndPoint to;
        IPEndPoint? moved;
        var failed = open;
        lock (_gate)
        {
            var changed = Array.IndexOf(_servers, server);
            int next;
            if (open)
            {
                // The server in use is skipped: to the first that is not (an earlier one too, when UDP started past it).
                next = changed == _inUse ? Array.FindIndex(_servers, s => !_followed!.IsSkipped(s)) : -1;
            }
            else if (changed >= 0 && changed < _inUse)
            {
                // An earlier server answers again: back to it.
                next = changed;
            }
            else
            {
                // A later one answers again: nothing to do, unless the one in use is still skipped (UDP stayed with it
                // when every server was): then it leaves it for the first that is not, as when its circuit opened.
                next = changed >= 0 && _followed!.IsSkipped(_servers[_inUse]) ? Array.FindIndex(_servers, s => !_followed.IsSkipped(s)) : -1;
                failed = true; // said as the server in use failing
            }

            if (next < 0 || next == _inUse)
            {
                return;
            }

            (from, to) = (_servers[_inUse], _servers[next]);
            moved = MoveTo(next);
        }

        if (moved is not null)
        {
            Changed?.Invoke(moved); // first: once the move is said, the NAT entries to the old server are closed
        }

        PipelineTelemetry.UdpServerMoves.Add(1, new KeyValuePair<string, object?>(TagNames.Direction, failed ? "away" : "back"));
        Moved?.Invoke(from, to, failed);
    }

    /// <summary>
    /// Under the lock: UDP goes to the server at <paramref name="next"/>. Returns its address when it is known and not
    /// the one in use; a name with none known yet is looked up at the next datagram, which goes on to the old address.
    /// </summary>
    private IPEndPoint? MoveTo(int next)
    {
        var server = _servers[next];
        _inUse = next;
        var dns = server as DnsEndPoint;
        Volatile.Write(ref _host, dns?.Host);
        _answered = null; // a lookup's answer for the server left behind
        IPEndPoint? address;
        if (dns is null)
        {
            var ip = (IPEndPoint)server;
            _port = ip.Port;
            address = DualStack.Unmapped(ip);
        }
        else
        {
            _port = dns.Port;
            address = _followed!.LastAnswered(dns) is { } answered ? new IPEndPoint(DualStack.Unmapped(answered), dns.Port) : _found[next];
        }

        if (address is null)
        {
            Volatile.Write(ref _checkAt, 0); // the next datagram asks the resolver
            return null;
        }

        _found[next] = address;
        Volatile.Write(ref _checkAt, _time.GetTimestamp() + CheckTicks());
        if (address.Equals(_address))
        {
            return null;
        }

        Volatile.Write(ref _address, address);
        return address;
    }

    private IPEndPoint Check()
    {
        IPEndPoint moved;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            if (now < _checkAt || _host is null)
            {
                return _address;
            }

            _checkAt = now + CheckTicks();
            var answer = _answered;
            _answered = null;
            if (answer is null && !_resolver!.TryResolveAtOnce(_host, out answer))
            {
                LookUp(_host);
                return _address;
            }

            // The address in use stays while the answer holds it (and it is the server in use's: a move to a name not yet
            // looked up left the old server's address in use meanwhile, perhaps on the same host).
            if (answer.Length == 0 || (_address.Port == _port && Array.Exists(answer, a => DualStack.Unmapped(a).Equals(_address.Address))))
            {
                return _address;
            }

            moved = new IPEndPoint(DualStack.Unmapped(answer[0]), _port);
            _found[_inUse] = moved;
            Volatile.Write(ref _address, moved);
        }

        Changed?.Invoke(moved);
        return moved;
    }

    /// <summary>One lookup at a time, in the background; its answer is taken at the next datagram.</summary>
    private void LookUp(string host)
    {
        if (Interlocked.Exchange(ref _lookingUp, 1) == 0)
        {
            _ = LookUpAsync(host);
        }
    }

    private async Task LookUpAsync(string host)
    {
        try
        {
            var answer = await _resolver!.ResolveAsync(host, CancellationToken.None).ConfigureAwait(false);
            if (answer.Length > 0)
            {
                lock (_gate)
                {
                    if (string.Equals(host, _host, StringComparison.Ordinal)) // UDP may have moved to another server meanwhile
                    {
                        _answered = answer;
                        _checkAt = 0; // the next datagram takes it
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The address in use stays; the next check asks again.
        }
        finally
        {
            Volatile.Write(ref _lookingUp, 0);
        }
    }

    private long CheckTicks() => (long)(CheckInterval.TotalSeconds * _time.TimestampFrequency);
}
