using System.Net;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Local and tunnel: where the UDP relay sends to the server. A server given by name is looked up again as the TCP
/// side's connections look it up: through the program's resolver, which keeps an answer for its TTL. Not per
/// datagram: while datagrams flow, at most once every <see cref="CheckInterval"/>, the resolver is asked what it knows
/// at once (the hosts file, its cache); when the cached answer has expired a lookup starts in the background and the
/// datagrams go on to the address in use until it answers. An answer that still holds the address in use keeps it (a
/// name with several addresses does not move back and forth); one that does not moves to its first address and raises
/// <see cref="Changed"/>, where the relay closes its NAT entries (their sockets are connected to the old address), so
/// the next datagrams open new ones to the new address. A lookup that fails keeps the address in use.
/// </summary>
/// <remarks>
/// Before, the name was looked up once at start and kept: a server on a dynamic DNS name lost UDP when its address
/// changed, until a restart, while TCP followed it.
/// </remarks>
internal sealed class UdpServerAddress
{
    /// <summary>How often, at most, the resolver is asked again while datagrams flow: the resolver's shortest TTL (1 s).</summary>
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly string? _host;
    private readonly int _port;
    private readonly IDnsResolver? _resolver;
    private readonly TimeProvider _time;
    private IPEndPoint _address;
    private long _checkAt;
    private IPAddress[]? _answered; // a background lookup's answer, taken at the next check
    private int _lookingUp;

    /// <summary>A server given by address: it never changes.</summary>
    public UdpServerAddress(IPEndPoint address)
    {
        _address = DualStack.Unmapped(address); // ::ffff:a.b.c.d is reached as a.b.c.d: .NET's IPv6 sockets are IPv6-only
        _port = address.Port;
        _time = TimeProvider.System;
    }

    /// <summary>A server given by name (<paramref name="host"/>), found at <paramref name="first"/> at start.</summary>
    public UdpServerAddress(string host, IPEndPoint first, IDnsResolver resolver, TimeProvider time)
    {
        _host = host;
        _address = DualStack.Unmapped(first);
        _port = first.Port;
        _resolver = resolver;
        _time = time;
        _checkAt = time.GetTimestamp() + CheckTicks();
    }

    /// <summary>Raised (on the thread that asked <see cref="Current"/>) when the server's address has changed; it is the new one.</summary>
    public event Action<IPEndPoint>? Changed;

    /// <summary>The address in use, without asking anything (for a NAT entry's socket being opened).</summary>
    public IPEndPoint Address => Volatile.Read(ref _address);

    /// <summary>The address to send a datagram to now: <see cref="Address"/>, checked again when a check is due.</summary>
    public IPEndPoint Current =>
        _host is null || _time.GetTimestamp() < Volatile.Read(ref _checkAt) ? Volatile.Read(ref _address) : Check();

    private IPEndPoint Check()
    {
        IPEndPoint moved;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            if (now < _checkAt)
            {
                return _address;
            }

            _checkAt = now + CheckTicks();
            var answer = Interlocked.Exchange(ref _answered, null);
            if (answer is null && !_resolver!.TryResolveAtOnce(_host!, out answer))
            {
                LookUp();
                return _address;
            }

            if (answer.Length == 0 || Array.Exists(answer, a => DualStack.Unmapped(a).Equals(_address.Address)))
            {
                return _address;
            }

            moved = new IPEndPoint(DualStack.Unmapped(answer[0]), _port);
            Volatile.Write(ref _address, moved);
        }

        Changed?.Invoke(moved);
        return moved;
    }

    /// <summary>One lookup at a time, in the background; its answer is taken at the next datagram.</summary>
    private void LookUp()
    {
        if (Interlocked.Exchange(ref _lookingUp, 1) == 0)
        {
            _ = LookUpAsync();
        }
    }

    private async Task LookUpAsync()
    {
        try
        {
            var answer = await _resolver!.ResolveAsync(_host!, CancellationToken.None).ConfigureAwait(false);
            if (answer.Length > 0)
            {
                Volatile.Write(ref _answered, answer);
                Interlocked.Exchange(ref _checkAt, 0); // the next datagram takes it
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
