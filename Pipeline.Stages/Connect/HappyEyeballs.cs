using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>
/// Connection racing over several addresses (RFC 8305, "Happy Eyeballs v2"): the addresses are tried in an order
/// that alternates address families, each attempt starting when the one before it failed or
/// <see cref="AttemptDelay"/> after it started, whichever comes first; the first to connect wins and the rest are
/// cancelled. An address that never answers (an IPv6 path that drops packets, a host that is down) so costs a quarter
/// of a second, not the whole connect timeout. One address is connected to directly, with no race.
/// </summary>
internal static class HappyEyeballs
{
    /// <summary>RFC 8305 § 5's recommended "Connection Attempt Delay".</summary>
    public static readonly TimeSpan AttemptDelay = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// RFC 8305 § 4: the addresses with their families alternating, starting with the first address's family (the
    /// resolver's preference, e.g. <c>ipv6_first</c>), each family's own order kept.
    /// </summary>
    public static IReadOnlyList<IPAddress> Interleave(IReadOnlyList<IPAddress> addresses)
    {
        if (addresses.Count < 2 || addresses.All(a => a.AddressFamily == addresses[0].AddressFamily))
        {
            return addresses;
        }

        var first = addresses.Where(a => a.AddressFamily == addresses[0].AddressFamily).ToList();
        var other = addresses.Where(a => a.AddressFamily != addresses[0].AddressFamily).ToList();
        var ordered = new List<IPAddress>(addresses.Count);
        for (var i = 0; i < Math.Max(first.Count, other.Count); i++)
        {
            if (i < first.Count)
            {
                ordered.Add(first[i]);
            }

            if (i < other.Count)
            {
                ordered.Add(other[i]);
            }
        }

        return ordered;
    }

    /// <summary>
    /// Opens a connection to the first of <paramref name="targets"/> that answers, by <paramref name="open"/> (which
    /// disposes its socket when it fails or is cancelled), and returns it with its index. When every attempt fails,
    /// throws the last failure; when <paramref name="cancellationToken"/> fires (the caller's deadline), an
    /// <see cref="OperationCanceledException"/> whose inner exception is the last attempt that failed before it, if any
    /// (one address refused while another never answered). Attempts still under way when one wins are cancelled; one
    /// that connects all the same is closed.
    /// </summary>
    public static async Task<(Socket Socket, int Index)> ConnectAsync<T>(
        IReadOnlyList<T> targets, Func<T, CancellationToken, ValueTask<Socket>> open, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        if (targets.Count == 1)
        {
            return (await open(targets[0], cancellationToken).ConfigureAwait(false), 0);
        }

        using var race = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = new List<(Task<Socket> Attempt, int Index)>();
        Exception? last = null;
        var next = 0;
        try
        {
            while (next < targets.Count || running.Count > 0)
            {
                ThrowIfOver(cancellationToken, last ?? FailedAmong(running)); // the deadline: what still runs is cancelled below
                if (next < targets.Count)
                {
                    running.Add((open(targets[next], race.Token).AsTask(), next));
                    next++;
                }

                // The next attempt starts when one fails or the delay passes; the last waits for what is running.
                using var delayOver = CancellationTokenSource.CreateLinkedTokenSource(race.Token);
                Task? delay = next < targets.Count ? Task.Delay(AttemptDelay, timeProvider, delayOver.Token) : null;
                while (true)
                {
                    var finished = await Task.WhenAny(delay is null ? running.Select(r => (Task)r.Attempt) : running.Select(r => (Task)r.Attempt).Append(delay)).ConfigureAwait(false);
                    if (finished == delay)
                    {
                        break; // start the next attempt beside the ones running
                    }

                    var index = running.FindIndex(r => r.Attempt == finished);
                    var (attempt, target) = running[index];
                    running.RemoveAt(index);
                    if (attempt.IsCompletedSuccessfully)
                    {
                        await delayOver.CancelAsync().ConfigureAwait(false); // its timer ends now, not 250 ms on
                        return (attempt.Result, target);
                    }

                    last = attempt.Exception?.InnerException ?? last;
                    await delayOver.CancelAsync().ConfigureAwait(false); // failed: the next starts at once
                    break;
                }
            }

            ThrowIfOver(cancellationToken, last);
            throw last ?? new SocketException((int)SocketError.HostNotFound);
        }
        finally
        {
            await race.CancelAsync().ConfigureAwait(false);
            foreach (var (attempt, _) in running)
            {
                _ = attempt.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            }
        }
    }

    /// <summary>
    /// An attempt that failed but was not looked at yet: the deadline and a refusal can land together, and the
    /// refusal is what the caller's message should name.
    /// </summary>
    private static Exception? FailedAmong(List<(Task<Socket> Attempt, int Index)> running) =>
        running.Select(r => r.Attempt).FirstOrDefault(a => a.IsFaulted)?.Exception?.InnerException;

    private static void ThrowIfOver(CancellationToken cancellationToken, Exception? last)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            throw last is SocketException failed
                ? new OperationCanceledException($"timed out; an earlier address: {failed.SocketErrorCode}", failed, cancellationToken)
                : new OperationCanceledException(cancellationToken);
        }
    }
}
