using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using System.Security.Cryptography;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// The program's own asynchronous resolver. In order: IP literals, the hosts file, the cache, then A and AAAA
/// queries over one shared UDP socket (random IDs; an answer counts only from the asked server's address and port
/// with the query's ID and question), falling back to TCP when an answer is truncated. Attempts go through a Polly
/// pipeline (per-attempt timeout, retry on the next server, total deadline). Concurrent lookups of one name share a
/// query. Answers are cached for their TTL, clamped; names that do not exist, briefly. Failures are an empty result.
/// </summary>
internal sealed class DnsResolver : IDnsResolver, IDisposable
{
    private readonly DnsResolverOptions _options;
    private readonly Dictionary<string, IPAddress[]> _hosts;
    private readonly IReadOnlyList<IPEndPoint> _servers;
    private readonly LruCache<string, IPAddress[]> _cache;
    private readonly ConcurrentDictionary<string, Lazy<Task<IPAddress[]>>> _inflight = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<ushort, Pending> _pending = new();
    private readonly ResiliencePipeline _pipeline;
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();

    public DnsResolver(DnsResolverOptions options, IScheduler scheduler, TimeProvider timeProvider)
    {
        _options = options;
        _hosts = HostsFile.Load(options.HostsPath);
        _servers = options.Servers ?? ResolvConf.Load(options.ResolvConfPath);
        _cache = new LruCache<string, IPAddress[]>(options.CacheSize, options.MaxTtl, sliding: false, scheduler, comparer: StringComparer.OrdinalIgnoreCase);
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = timeProvider }
            .AddTimeout(options.TotalTimeout)
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = Math.Max(0, options.Attempts - 1),
                Delay = TimeSpan.Zero,
                ShouldHandle = new PredicateBuilder().Handle<TimeoutRejectedException>().Handle<SocketException>().Handle<DnsServerFailureException>(),
            })
            .AddTimeout(options.AttemptTimeout)
            .Build();
        _socket = OpenSocket();
        _ = ReceiveLoopAsync();
    }

    /// <summary>How many queries were sent (tests count them to see coalescing and caching).</summary>
    public int QueriesSent => Volatile.Read(ref _queriesSent);

    private int _queriesSent;

    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return [literal];
        }

        var name = host.TrimEnd('.');
        if (_hosts.TryGetValue(name, out var fromHosts))
        {
            return Order(fromHosts);
        }

        if (_cache.TryGet(name, out var cached))
        {
            PipelineTelemetry.DnsCacheHits.Add(1);
            return cached;
        }

        PipelineTelemetry.DnsCacheMisses.Add(1);
        var lookup = _inflight.GetOrAdd(name, n => new Lazy<Task<IPAddress[]>>(() => LookupAsync(n)));
        return await lookup.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        _cache.Dispose();
        foreach (var pending in _pending.Values)
        {
            pending.Answer.TrySetCanceled();
        }
    }

    private static Socket OpenSocket()
    {
        try
        {
            var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
            socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
            return socket;
        }
        catch (SocketException)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Any, 0));
            return socket;
        }
    }

    private async Task<IPAddress[]> LookupAsync(string name)
    {
        try
        {
            var attempt = 0;
            var (a, aaaa) = await _pipeline.ExecuteAsync(
                async token =>
                {
                    var server = _servers[attempt++ % _servers.Count];
                    var v4 = OrNull(QueryAsync(server, name, DnsRecordType.A, token), token);
                    var v6 = OrNull(QueryAsync(server, name, DnsRecordType.Aaaa, token), token);
                    var a = await v4.ConfigureAwait(false);
                    var aaaa = await v6.ConfigureAwait(false);

                    // Some servers refuse one type (dnsmasq's --address does for AAAA), some never answer it (the
                    // middleboxes glibc's "single-request" is for): one good family is an answer, if it says something
                    // (addresses, or that the name does not exist). An empty answer beside a failed or missing one says
                    // nothing about the other family: the next server is asked.
                    var answered = a ?? aaaa;
                    if (answered is null || ((a is null || aaaa is null) && answered.Addresses.Count == 0 && !answered.IsNameError))
                    {
                        token.ThrowIfCancellationRequested(); // nothing in time: the attempt's timeout, then the next server
                        throw new DnsServerFailureException();
                    }

                    return (a ?? Empty, aaaa ?? Empty);
                },
                _stop.Token).ConfigureAwait(false);

            var addresses = Order([.. a.Addresses, .. aaaa.Addresses]);
            if (addresses.Length == 0)
            {
                _cache.Set(name, [], _options.NegativeTtl);
                return [];
            }

            var ttls = new[] { a, aaaa }.Where(x => x.Addresses.Count > 0).Select(x => x.Ttl);
            var ttl = TimeSpan.FromTicks(Math.Clamp(ttls.Min().Ticks, _options.MinTtl.Ticks, _options.MaxTtl.Ticks));
            _cache.Set(name, addresses, ttl);
            return addresses;
        }
        catch (Exception e) when (e is TimeoutRejectedException or SocketException or DnsServerFailureException or OperationCanceledException or ObjectDisposedException)
        {
            return []; // no answer from any server: not cached, the next lookup asks again
        }
        finally
        {
            _inflight.TryRemove(name, out _);
        }
    }

    private static readonly DnsAnswer Empty = new(DnsAnswer.NoError, false, [], TimeSpan.Zero);

    /// <summary>
    /// The answer, or null when the server could not help (SERVFAIL, REFUSED) or had not answered when the attempt
    /// ended (<paramref name="attempt"/> cancelled): the other family's answer may still be enough.
    /// </summary>
    private static async Task<DnsAnswer?> OrNull(Task<DnsAnswer> query, CancellationToken attempt)
    {
        try
        {
            return await query.ConfigureAwait(false);
        }
        catch (DnsServerFailureException)
        {
            return null;
        }
        catch (OperationCanceledException) when (attempt.IsCancellationRequested)
        {
            return null;
        }
    }

    private async Task<DnsAnswer> QueryAsync(IPEndPoint server, string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        var query = new byte[DnsMessage.HeaderSize + 260 + 4];
        ushort id;
        var pending = new Pending(server, name, type);
        do
        {
            id = (ushort)RandomNumberGenerator.GetInt32(1, 65_536);
        }
        while (!_pending.TryAdd(id, pending));

        try
        {
            var length = DnsMessage.WriteQuery(id, name, type, query);
            if (length == 0)
            {
                return new DnsAnswer(DnsAnswer.NameError, false, [], TimeSpan.Zero);
            }

            Interlocked.Increment(ref _queriesSent);
            EndPoint target = _socket.AddressFamily == AddressFamily.InterNetworkV6 && server.AddressFamily == AddressFamily.InterNetwork
                ? new IPEndPoint(server.Address.MapToIPv6(), server.Port)
                : server;
            await _socket.SendToAsync(query.AsMemory(0, length), SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
            var answer = await pending.Answer.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (answer.Truncated)
            {
                answer = await QueryTcpAsync(server, query.AsMemory(0, length), id, name, type, cancellationToken).ConfigureAwait(false);
            }

            // SERVFAIL, REFUSED and the like: this server cannot help, try the next.
            return answer.ResponseCode is DnsAnswer.NoError or DnsAnswer.NameError ? answer : throw new DnsServerFailureException();
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private static async Task<DnsAnswer> QueryTcpAsync(
        IPEndPoint server, ReadOnlyMemory<byte> query, ushort id, string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        var prefix = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(prefix, (ushort)query.Length);
        await socket.SendAsync(prefix, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(query, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        await ReceiveExactlyAsync(socket, prefix, cancellationToken).ConfigureAwait(false);
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        await ReceiveExactlyAsync(socket, message, cancellationToken).ConfigureAwait(false);
        return DnsMessage.TryParseAnswer(message, id, name, type, out var answer) == DnsParseStatus.Ok
            ? answer
            : throw new DnsServerFailureException();
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }

            buffer = buffer[n..];
        }
    }

    /// <summary>One loop for the shared socket: each answer goes to the query it belongs to, or is ignored.</summary>
    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[DnsMessage.MaxSize];
        EndPoint any = _socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult result;
            try
            {
                result = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused or SocketError.MessageSize)
            {
                continue; // ICMP for an earlier query: that attempt times out and moves on
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            var message = buffer.AsSpan(0, result.ReceivedBytes);
            var id = DnsMessage.ReadId(message);
            if (!_pending.TryGetValue(id, out var pending) || !DualStack.Unmapped((IPEndPoint)result.RemoteEndPoint).Equals(DualStack.Unmapped(pending.Server)))
            {
                PipelineTelemetry.DnsIgnored.Add(1);
                continue;
            }

            if (DnsMessage.TryParseAnswer(message, id, pending.Name, pending.Type, out var answer) != DnsParseStatus.Ok)
            {
                PipelineTelemetry.DnsIgnored.Add(1);
                continue; // a forged or broken answer does not end the wait for the real one
            }

            pending.Answer.TrySetResult(answer);
        }
    }

    private IPAddress[] Order(IPAddress[] addresses)
    {
        var preferred = _options.Ipv6First ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
        return [.. addresses.OrderBy(a => a.AddressFamily == preferred ? 0 : 1)];
    }

    private sealed class Pending(IPEndPoint server, string name, DnsRecordType type)
    {
        public IPEndPoint Server { get; } = server;

        public string Name { get; } = name;

        public DnsRecordType Type { get; } = type;

        public TaskCompletionSource<DnsAnswer> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
