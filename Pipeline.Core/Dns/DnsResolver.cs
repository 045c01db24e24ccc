using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Reactive.Concurrency;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>
/// The program's own asynchronous resolver. In order: IP literals, the hosts file (read again when it changes), the cache, then A and AAAA
/// queries, each over a UDP socket of its own (a random ID and a fresh source port; connected, so that an answer counts
/// only from the asked server's address and port, and then only with the query's ID and question), falling back to TCP
/// when an answer is truncated. Attempts go through a Polly pipeline (retry on the next server, total deadline), each
/// with a timeout that doubles each time round the servers, starting with the server that answered last; a server that
/// answers that it cannot help (SERVFAIL, REFUSED and the like), or cannot be reached (its port closed, no route), is not
/// asked again within the lookup. Concurrent lookups of one name share a query, which ends when every one that waits for
/// it has left (<see cref="SharedLookup"/>). Answers are cached for their TTL, clamped; names that do not exist or have
/// no address, for the zone's negative TTL (its SOA), clamped; a name every server answered SERVFAIL or REFUSED for, a few seconds.
/// Failures are an empty result, and <see cref="FailureReason"/> says why for a while after.
/// </summary>
internal sealed class DnsResolver : IDnsResolver, IDisposable
{
    private readonly DnsResolverOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly object _hostsGate = new();
    private Dictionary<string, IPAddress[]> _hosts;
    private (DateTime Written, long Length) _hostsVersion;
    private byte[] _hostsDigest;
    private long _hostsCheckAt;
    private readonly IReadOnlyList<IPEndPoint> _servers;
    private readonly LruCache<string, IPAddress[]> _cache;
    private readonly LruCache<string, string> _failures;
    private readonly ConditionalWeakTable<IPAddress[], string> _cachedReasons = new(); // a cached failure's reason, keyed by its entry's own empty array
    private readonly ConcurrentDictionary<string, SharedLookup> _inflight = new(StringComparer.OrdinalIgnoreCase);
    private readonly ResiliencePipeline _pipeline;
    private readonly CancellationTokenSource _stop = new();

    public DnsResolver(DnsResolverOptions options, IScheduler scheduler, TimeProvider timeProvider)
    {
        // Without servers of its own (-d), resolv.conf gives them, and its timeout:N and attempts:N the attempts' pace.
        options = options.Servers is null ? ResolvConf.Apply(options) : options;
        _options = options;
        _timeProvider = timeProvider;
        _hostsVersion = HostsVersion(options.HostsPath);
        _hosts = HostsFile.Read(options.HostsPath, out _hostsDigest);
        _hostsCheckAt = timeProvider.GetTimestamp() + HostsCheckTicks();
        // A name server given as an IPv4-mapped address (-d ::ffff:a.b.c.d) is asked at the IPv4 address: .NET's IPv6
        // sockets are IPv6-only, and every query to the mapped form failed.
        _servers = [.. options.Servers!.Select(Multiplexing.DualStack.Unmapped)];
        _cache = new LruCache<string, IPAddress[]>(options.CacheSize, options.MaxTtl, sliding: false, scheduler, comparer: StringComparer.OrdinalIgnoreCase);
        _failures = new LruCache<string, string>(FailuresKept, FailureKept, sliding: false, scheduler, comparer: StringComparer.OrdinalIgnoreCase);
        var pipeline = new ResiliencePipelineBuilder { TimeProvider = timeProvider }.AddTimeout(options.TotalTimeout);
        if (options.Attempts > 1) // one attempt (resolv.conf's attempts:1 with one server): no retry, which Polly takes only with 1 or more
        {
            pipeline.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.Attempts - 1,
                Delay = TimeSpan.Zero, // an attempt that timed out waited already, and the next one waits longer (AttemptTimeout)
                ShouldHandle = new PredicateBuilder().Handle<TimeoutRejectedException>().Handle<SocketException>().Handle<DnsServerFailureException>(),
            });
        }

        _pipeline = pipeline.Build();
    }

    /// <summary>
    /// How many failed names that are not cached (no answer in time, a closed port) keep their reason
    /// (<see cref="FailureReason"/>), and for how long: enough for the log line of each connection that waited for the
    /// lookup, bounded whatever names a storm of lookups brings. A cached failure keeps its reason with its entry.
    /// </summary>
    private const int FailuresKept = 1024;

    private static readonly TimeSpan FailureKept = TimeSpan.FromMinutes(1);

    /// <summary>How many queries were sent (tests count them to see coalescing and caching).</summary>
    public int QueriesSent => Volatile.Read(ref _queriesSent);

    private int _queriesSent;

    /// <summary>
    /// How often the hosts file is looked at again (its time and length, and when they are the same, its bytes' digest;
    /// read again when they change). ss-server
    /// (c-ares) reads it at every lookup, so an edit counts at once; before, it counted only after a restart. A look
    /// per connection would be a system call on the hot path; an edit that counts within seconds is what is needed.
    /// </summary>
    private static readonly TimeSpan HostsCheckInterval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The server that answered last: lookups ask it first. With the first of -d's servers down, every lookup waited out
    /// an attempt on it (2 s) before asking the next; ss-server (c-ares 1.18) waits longer still, each time.
    /// </summary>
    private int _answering;

    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (TryResolveAtOnce(host, out var known))
        {
            return known;
        }

        PipelineTelemetry.DnsCacheMisses.Add(1);
        var lookup = Join(DnsMessage.WithoutRootDot(host));
        try
        {
            return await lookup.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lookup.Leave(); // the last to leave before it ends (its client gone) ends it
        }
    }

    /// <summary>The lookup of <paramref name="name"/> in flight, joined; a new one when there is none, or only one every waiter left.</summary>
    private SharedLookup Join(string name)
    {
        while (true)
        {
            if (_inflight.TryGetValue(name, out var running))
            {
                if (running.TryJoin())
                {
                    return running;
                }

                _inflight.TryRemove(KeyValuePair.Create(name, running)); // abandoned, ending: its answer would be none
                continue;
            }

            var lookup = new SharedLookup(l => LookupAsync(name, l));
            if (_inflight.TryAdd(name, lookup))
            {
                return lookup;
            }
        }
    }

    /// <summary>An IP literal, a name in the hosts file, or a name in the cache (a hit is counted).</summary>
    public bool TryResolveAtOnce(string host, out IPAddress[] addresses)
    {
        if (IpLiteral.TryParse(host, out var literal))
        {
            addresses = [literal];
            return true;
        }

        var name = DnsMessage.WithoutRootDot(host);
        if (Hosts().TryGetValue(name, out var fromHosts))
        {
            addresses = Order(fromHosts);
            return true;
        }

        if (_cache.TryGet(name, out var cached))
        {
            PipelineTelemetry.DnsCacheHits.Add(1);
            addresses = cached;
            return true;
        }

        addresses = [];
        return false;
    }

    /// <summary>
    /// The hosts file's table, read again when the file has changed since it was last looked at (every
    /// <see cref="HostsCheckInterval"/> at most). One lookup looks; a lookup that finds another looking goes on with the
    /// table there is rather than wait for the file (a large one, a hung file system), cache hits included.
    /// </summary>
    private Dictionary<string, IPAddress[]> Hosts()
    {
        var now = _timeProvider.GetTimestamp();
        if (now >= Volatile.Read(ref _hostsCheckAt) && Monitor.TryEnter(_hostsGate))
        {
            try
            {
                if (now >= _hostsCheckAt)
                {
                    // The same time and length may still hide an edit (one within the file system's timestamp tick of
                    // the last, or a copy that kept its time): then the bytes' digest says. A read of the file every
                    // few seconds at most, and only while lookups come.
                    var version = HostsVersion(_options.HostsPath);
                    if (version != _hostsVersion || !HostsFile.Digest(_options.HostsPath).AsSpan().SequenceEqual(_hostsDigest))
                    {
                        _hostsVersion = version;
                        Volatile.Write(ref _hosts, HostsFile.Read(_options.HostsPath, out _hostsDigest));
                    }

                    Volatile.Write(ref _hostsCheckAt, now + HostsCheckTicks());
                }
            }
            finally
            {
                Monitor.Exit(_hostsGate);
            }
        }

        return Volatile.Read(ref _hosts);
    }

    private long HostsCheckTicks() => (long)(HostsCheckInterval.TotalSeconds * _timeProvider.TimestampFrequency);

    /// <summary>When the file was last written and its length (a missing file: the same value each time).</summary>
    private static (DateTime Written, long Length) HostsVersion(string path)
    {
        try
        {
            var file = new FileInfo(path);
            return file.Exists ? (file.LastWriteTimeUtc, file.Length) : default;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return default;
        }
    }

    public string? FailureReason(string host)
    {
        var name = DnsMessage.WithoutRootDot(host);
        return (_cache.TryPeek(name, out var cached) && _cachedReasons.TryGetValue(cached, out var reason)) || _failures.TryPeek(name, out reason)
            ? reason
            : null;
    }

    /// <summary>Ends the lookups under way (empty results); their queries' sockets close with them.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _cache.Dispose();
        _failures.Dispose();
    }

    private async Task<IPAddress[]> LookupAsync(string name, SharedLookup lookup)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, lookup.Abandoned); // disposed, or every waiter gone
        var attempt = 0;
        var asked = new int[_servers.Count]; // how often each server was asked: its next attempt waits that many doublings
        var next = Volatile.Read(ref _answering);
        var cannotHelp = new bool[_servers.Count]; // servers that answered SERVFAIL, REFUSED or the like, or whose port is closed: not asked again
        var cacheable = true; // false once a server is passed over for what says nothing about the name (a closed port, FORMERR)
        List<string>? failures = null; // each different reason, in order
        try
        {
            if (!CanBeAsked(name))
            {
                return Failed(name, "not a valid DNS name (an empty label, one over 63 characters, over 253 in all, or not ASCII)", _options.NegativeTtl);
            }

            var answered = await _pipeline.ExecuteAsync<(DnsAnswer A, DnsAnswer Aaaa, IPEndPoint Server)?>(
                async token =>
                {
                    var index = NextServer(cannotHelp, next);
                    next = index + 1;
                    var server = _servers[index];
                    var failure = new StrongBox<(DnsServerFailureException Error, DnsRecordType Type)?>(); // why this attempt did not answer (its own: a query of an earlier one may still write)
                    var wait = AttemptTimeout(asked[index]++);
                    attempt++;
                    using var timeout = new CancellationTokenSource(wait, _timeProvider);
                    using var ended = CancellationTokenSource.CreateLinkedTokenSource(token, timeout.Token);

                    // When one family's query throws (a refused port, a failed TCP retry), the other is ended with it:
                    // the attempt's token is not cancelled when it throws, and that query would wait on. Both are
                    // awaited either way, so that the other's end (its exception too) is observed within the attempt.
                    using var both = CancellationTokenSource.CreateLinkedTokenSource(ended.Token);
                    var v4 = OrNull(QueryAsync(server, name, DnsRecordType.A, both.Token), DnsRecordType.A, ended.Token, failure);
                    var v6 = OrNull(QueryAsync(server, name, DnsRecordType.Aaaa, both.Token), DnsRecordType.Aaaa, ended.Token, failure);
                    DnsAnswer? a, aaaa;
                    try
                    {
                        a = await v4.ConfigureAwait(false);
                        aaaa = await v6.ConfigureAwait(false);
                    }
                    catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
                    {
                        // ICMP port unreachable (a connected UDP socket hears it): nothing listens there, and asking
                        // again each round would only bring the same (or, once the kernel rate-limits its ICMP, a
                        // wait for the attempt's timeout). So with no route to the server (the send fails at once, and
                        // each retry with it) or ICMP host or network unreachable from a router (or a neighbour that
                        // does not answer ARP, after 3 s): a route that is gone does not come back within the lookup.
                        // Passed over as a server that cannot help, but the name's failure is not remembered for it:
                        // the server may be back (restarted, its route too) at the next lookup.
                        Remember(ref failures, e.SocketErrorCode switch
                        {
                            SocketError.ConnectionRefused => $"port unreachable at {server}",
                            SocketError.HostUnreachable => $"host unreachable at {server}",
                            _ => $"network unreachable at {server}",
                        });
                        cacheable = false;
                        return PassOver(index);
                    }
                    catch (SocketException e)
                    {
                        Remember(ref failures, $"{server}: {e.SocketErrorCode}");
                        throw;
                    }
                    finally
                    {
                        await both.CancelAsync().ConfigureAwait(false);
                        await Ended(v4).ConfigureAwait(false);
                        await Ended(v6).ConfigureAwait(false);
                    }

                    // Some servers refuse one type (dnsmasq's --address does for AAAA), some never answer it (the
                    // middleboxes glibc's "single-request" is for): one good family is an answer, if it says something
                    // (addresses, or that the name does not exist). An empty answer beside a failed or missing one says
                    // nothing about the other family: the next server is asked.
                    var answer = a ?? aaaa;
                    if (answer is null || ((a is null || aaaa is null) && answer.Addresses.Count == 0 && !answer.IsNameError))
                    {
                        // One family's failure beside the other's silence is said with it: "no answer from ADDR" alone
                        // hid a refused TCP retry (or a SERVFAIL) for the family that did answer.
                        var timedOut = ended.IsCancellationRequested;
                        Remember(ref failures, failure.Value switch
                        {
                            null => $"no answer from {server}",
                            var (error, type) when timedOut => $"no answer from {server} ({(type == DnsRecordType.A ? "A" : "AAAA")}: {error.Failure})",
                            var (error, _) => error.Message,
                        });
                        token.ThrowIfCancellationRequested(); // the lookup's deadline
                        if (timedOut)
                        {
                            throw new TimeoutRejectedException(wait); // the next attempt, on the next server
                        }

                        // The server answered that it cannot help (SERVFAIL, REFUSED, NOTIMP, FORMERR, a broken or cut-off
                        // TCP answer, its TCP port refused for a truncated answer): that is its answer for this name now,
                        // and asking it again at once would only bring the same one (c-ares skips it too).
                        cacheable &= failure.Value?.Error.Cacheable != false;
                        return PassOver(index);
                    }

                    Volatile.Write(ref _answering, index);
                    return (a ?? Empty, aaaa ?? Empty, server);
                },
                stop.Token).ConfigureAwait(false);

            if (answered is not var (a, aaaa, server))
            {
                // Every server was passed over. When each answered SERVFAIL or REFUSED: remembered briefly (RFC 2308
                // § 7.1), so that a flood of connections to the name does not send a query each to a server that is
                // broken for it. A closed port, a FORMERR, a NOTIMP or a broken or cut-off TCP answer says nothing about the name.
                return cacheable
                    ? Failed(name, $"{string.Join("; ", failures!)} ({Attempts(attempt)}; cached for {_options.ServerFailureTtl.TotalSeconds:0.###} s)", _options.ServerFailureTtl)
                    : Failed(name, $"{string.Join("; ", failures!)} ({Attempts(attempt)})");
            }

            var addresses = Order([.. a.Addresses, .. aaaa.Addresses]);
            if (addresses.Length == 0)
            {
                return Failed(
                    name,
                    a.IsNameError || aaaa.IsNameError ? $"no such name (NXDOMAIN from {server})" : $"no A or AAAA record (from {server})",
                    NegativeTtl(a, aaaa));
            }

            var ttls = new[] { a, aaaa }.Where(x => x.Addresses.Count > 0).Select(x => x.Ttl);
            var ttl = TimeSpan.FromTicks(Math.Clamp(ttls.Min().Ticks, _options.MinTtl.Ticks, _options.MaxTtl.Ticks));
            _cache.Set(name, addresses, ttl);
            _failures.Remove(name); // an earlier failure's reason no longer holds
            return addresses;
        }
        catch (Exception e) when (e is TimeoutRejectedException or SocketException or DnsServerFailureException or OperationCanceledException or ObjectDisposedException)
        {
            // No answer from some server: not cached, the next lookup asks again. Ended (the resolver disposed, or every
            // waiter gone): no reason to keep.
            return stop.IsCancellationRequested
                ? []
                : Failed(name, $"{(failures is null ? "no answer" : string.Join("; ", failures))} ({Attempts(attempt)})");
        }
        finally
        {
            _inflight.TryRemove(KeyValuePair.Create(name, lookup)); // this one only: an abandoned one may have been replaced
        }

        // Marks a server as not to be asked again within this lookup: null (the lookup's end) when none is left,
        // otherwise the exception that has the retry ask the next.
        (DnsAnswer A, DnsAnswer Aaaa, IPEndPoint Server)? PassOver(int index)
        {
            cannotHelp[index] = true;
            return Array.TrueForAll(cannotHelp, skipped => skipped) ? null : throw new DnsServerFailureException();
        }
    }

    private static readonly DnsAnswer Empty = new(DnsAnswer.NoError, false, [], TimeSpan.Zero);

    /// <summary>SERVFAIL (RFC 1035 § 4.1.1): the name server could not process the query (for this name, now).</summary>
    private const int ServerFailure = 2;

    /// <summary>REFUSED (RFC 1035 § 4.1.1): the name server will not answer the query (for this name, from us).</summary>
    private const int Refused = 5;

    /// <summary>The largest query: the header, a name of at most 255 bytes on the wire (and room to find it longer), type and class.</summary>
    private const int QuerySize = DnsMessage.HeaderSize + 260 + 4;

    /// <summary>
    /// How long a name with no address is remembered: what the zone says (its SOA, RFC 2308 § 5; the smaller of the two
    /// families'), clamped to [<see cref="DnsResolverOptions.MinTtl"/>, <see cref="DnsResolverOptions.MaxNegativeTtl"/>];
    /// <see cref="DnsResolverOptions.NegativeTtl"/> when neither answer carries an SOA.
    /// </summary>
    private TimeSpan NegativeTtl(DnsAnswer a, DnsAnswer aaaa) =>
        (a.NegativeTtl, aaaa.NegativeTtl) switch
        {
            (null, null) => _options.NegativeTtl,
            var (v4, v6) => TimeSpan.FromTicks(Math.Clamp(Math.Min((v4 ?? TimeSpan.MaxValue).Ticks, (v6 ?? TimeSpan.MaxValue).Ticks), _options.MinTtl.Ticks, _options.MaxNegativeTtl.Ticks)),
        };

    private static string Attempts(int count) => $"{count} attempt{(count == 1 ? "" : "s")}";

    /// <summary>The first server from <paramref name="from"/> on (round the list) that has not said it cannot help.</summary>
    private static int NextServer(bool[] cannotHelp, int from)
    {
        for (var i = 0; i < cannotHelp.Length; i++)
        {
            var index = (from + i) % cannotHelp.Length;
            if (!cannotHelp[index])
            {
                return index;
            }
        }

        throw new InvalidOperationException("every server was passed over; the attempt before ends the lookup");
    }

    /// <summary>
    /// How long an attempt on a server asked <paramref name="askedBefore"/> times before in the lookup waits:
    /// <see cref="DnsResolverOptions.AttemptTimeout"/>, doubled each time round the servers, as c-ares does. A server that
    /// answers late (a recursive resolver still asking) is heard on a later round instead of being asked again at the
    /// same pace; the lookup's total deadline bounds it all. Rounds are counted per server, so a server passed over
    /// (a closed port, no route, SERVFAIL) no longer counts: the rounds of the servers left are theirs alone. Counted
    /// over every attempt, a lone server left after a closed port waited 1, 2, 2, 4 times the first
    /// wait instead of 1, 2, 4, 8. With no server passed over, each server is asked once a round: the same waits as before.
    /// </summary>
    private TimeSpan AttemptTimeout(int askedBefore) => _options.AttemptTimeout * (1 << Math.Min(askedBefore, MaxDoublings));

    private const int MaxDoublings = 10;

    private static void Remember(ref List<string>? failures, string failure)
    {
        failures ??= [];
        if (!failures.Contains(failure))
        {
            failures.Add(failure);
        }
    }

    /// <summary>Whether <paramref name="name"/> (its root dot taken off already: one more is an empty label) can be put in a query.</summary>
    private static bool CanBeAsked(string name) => !name.EndsWith('.') && DnsMessage.WriteQuery(0, name, DnsRecordType.A, stackalloc byte[QuerySize]) > 0;

    /// <summary>
    /// An empty result, its reason kept for <see cref="FailureReason"/>; with <paramref name="cachedFor"/>, the name's
    /// failure is cached that long, and its reason is kept with the cache entry (as long as the entry, whatever the
    /// cache's size); without, the reason alone is kept (<see cref="FailuresKept"/>, <see cref="FailureKept"/>).
    /// </summary>
    private IPAddress[] Failed(string name, string reason, TimeSpan? cachedFor = null)
    {
        if (cachedFor is not { } ttl)
        {
            _failures.Set(name, reason);
            return [];
        }

        // An empty array of its own (not the shared Array.Empty) is the key of its reason: the reason goes when the
        // cache lets the array go, and a successful entry carries nothing more.
        var failed = new IPAddress[0];
        _cachedReasons.AddOrUpdate(failed, reason);
        _cache.Set(name, failed, ttl);
        _failures.Remove(name); // an earlier reason that was not cached no longer holds
        return failed;
    }

    /// <summary>
    /// The answer, or null when the server could not help (SERVFAIL, REFUSED, FORMERR, its TCP port refused the retry of
    /// a truncated answer or cut it off) or had not answered when the attempt ended (<paramref name="attempt"/> cancelled):
    /// the other family's answer may still be enough. A server's refusal goes in <paramref name="failure"/>, with the
    /// <paramref name="type"/> it was for.
    /// </summary>
    private static async Task<DnsAnswer?> OrNull(
        Task<DnsAnswer> query, DnsRecordType type, CancellationToken attempt, StrongBox<(DnsServerFailureException Error, DnsRecordType Type)?> failure)
    {
        try
        {
            return await query.ConfigureAwait(false);
        }
        catch (DnsServerFailureException e)
        {
            if (failure.Value is not { Error.Cacheable: false })
            {
                failure.Value = (e, type); // one family's FORMERR is kept over the other's SERVFAIL: the name's failure is then not cached
            }

            return null;
        }
        catch (OperationCanceledException) when (attempt.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>
    /// Waits for a query that may have failed to end, its exception (a refused port, or the cancellation of the query
    /// beside it that failed first) observed: the attempt reports its first query's failure.
    /// </summary>
    private static async Task Ended(Task<DnsAnswer?> query)
    {
        try
        {
            await query.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Observed; the attempt's outcome is decided by the query awaited first.
        }
    }

    /// <summary>
    /// One query over a UDP socket of its own: its source port is a fresh random one (RFC 5452 § 9.2: with the ID, 32
    /// bits for a forger to guess, not 16 once one shared port is known), and connected, it hears only the asked
    /// server's address and port (and that server's ICMP port unreachable, which ends the attempt at once).
    /// </summary>
    private async Task<DnsAnswer> QueryAsync(IPEndPoint server, string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        var query = new byte[QuerySize];
        var id = (ushort)RandomNumberGenerator.GetInt32(0, 65_536);
        var length = DnsMessage.WriteQuery(id, name, type, query);
        if (length == 0)
        {
            return new DnsAnswer(DnsAnswer.NameError, false, [], TimeSpan.Zero);
        }

        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        var buffer = ArrayPool<byte>.Shared.Rent(DnsMessage.MaxUdpSize + 1); // room to see that a datagram is longer than that
        try
        {
            // Neither call waits: a UDP connect only names the peer, and one datagram goes into an empty send buffer.
            // The answer is awaited on the readiness loop (.NET's own socket engine cost a hand-off to its epoll
            // thread per query and per answer: half the uncached lookup rate, `bench/e2e/dns_rate.sh`).
            socket.Connect(server);
            Interlocked.Increment(ref _queriesSent);
            socket.Send(query.AsSpan(0, length));
            DnsAnswer answer;
            while (true)
            {
                await SocketReadiness.ReadableAsync(socket, cancellationToken).ConfigureAwait(false);
                var received = await SocketIo.ReceiveAsync(socket, buffer, cancellationToken).ConfigureAwait(false);
                if (received > DnsMessage.MaxUdpSize && DnsMessage.ReadId(buffer) == id && (buffer[2] & 0x80) != 0) // a response with the query's ID
                {
                    // Longer than a UDP answer to this query may be (a server that ignores the limit), and perhaps cut
                    // short by the buffer: asked again over TCP, as a truncated one is.
                    answer = new DnsAnswer(DnsAnswer.NoError, Truncated: true, [], TimeSpan.Zero);
                    break;
                }

                if (DnsMessage.TryParseAnswer(buffer.AsSpan(0, received), id, name, type, out answer) == DnsParseStatus.Ok)
                {
                    break;
                }

                PipelineTelemetry.DnsIgnored.Add(1); // a forged or broken answer does not end the wait for the real one
            }

            if (answer.Truncated)
            {
                answer = await QueryTcpAsync(server, query.AsMemory(0, length), id, name, type, cancellationToken).ConfigureAwait(false);
            }

            // SERVFAIL, REFUSED and the like: this server cannot help, try the next. Only SERVFAIL and REFUSED say
            // something about the name (RFC 2308 § 7.1); FORMERR (it could not parse the query: ours carry no EDNS, so
            // there is no simpler form to fall back to), NOTIMP (it does not do such queries) and a code no answer to
            // a query should carry say something about the server: the next is asked too, but the name's failure is
            // not remembered for them.
            return answer.ResponseCode is DnsAnswer.NoError or DnsAnswer.NameError
                ? answer
                : throw new DnsServerFailureException(DnsAnswer.ResponseCodeName(answer.ResponseCode), $"{DnsAnswer.ResponseCodeName(answer.ResponseCode)} from {server}", null)
                {
                    Cacheable = answer.ResponseCode is ServerFailure or Refused,
                };
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task<DnsAnswer> QueryTcpAsync(
        IPEndPoint server, ReadOnlyMemory<byte> query, ushort id, string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            // The server does not speak DNS over TCP (many home routers and forwarders do not): this family fails, as
            // one a server refuses does, and the other family's answer over UDP may still be enough. Said as what it is,
            // not as the UDP port's "port unreachable"; it says nothing about the name (not cached).
            throw new DnsServerFailureException("TCP connection refused", $"TCP connection refused at {server}", e);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            throw CutOff(server, e); // accepted and reset before the connect was seen to complete (its SO_ERROR)
        }

        byte[] message;
        try
        {
            var prefix = new byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(prefix, (ushort)query.Length);
            await socket.SendAsync(prefix, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            await socket.SendAsync(query, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            await ReceiveExactlyAsync(socket, prefix, cancellationToken).ConfigureAwait(false);
            message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
            await ReceiveExactlyAsync(socket, message, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            // Accepted, then closed or reset before a whole answer (a forwarder that takes TCP connections but drops
            // them): this family fails, as a refused or broken TCP answer does, and the other family's answer over UDP
            // may still be enough. As a SocketException it ended the whole attempt and threw that answer away. It says
            // nothing about the name (not cached).
            throw CutOff(server, e);
        }

        return DnsMessage.TryParseAnswer(message, id, name, type, out var answer) is var status && status == DnsParseStatus.Ok
            ? answer
            : throw new DnsServerFailureException($"a bad answer over TCP ({status})", $"a bad answer over TCP from {server} ({status})", null);
    }

    /// <summary>A TCP retry accepted and then closed or reset before a whole answer came.</summary>
    private static DnsServerFailureException CutOff(IPEndPoint server, SocketException e) =>
        new("TCP answer cut off", $"TCP answer cut off at {server}", e);

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

    private IPAddress[] Order(IPAddress[] addresses)
    {
        var preferred = _options.Ipv6First ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
        return [.. addresses.OrderBy(a => a.AddressFamily == preferred ? 0 : 1)];
    }
}
