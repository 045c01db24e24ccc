using System.Net;
using Shadowsocks.Pipeline.Core.Dns;

namespace Shadowsocks.Pipeline.Tests.Stages.Resolve;

/// <summary>
/// A resolver whose every call is a lookup of its own, answered (loopback) only when the test says: the calls' names
/// in order, and <see cref="Answer"/> to end one. Nothing is known at once.
/// </summary>
internal sealed class StepResolver : IDnsResolver
{
    private readonly object _gate = new();
    private readonly List<(string Host, TaskCompletionSource<IPAddress[]> Answer)> _calls = [];

    /// <summary>The names asked, in order.</summary>
    public IReadOnlyList<string> Hosts
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls.Select(static c => c.Host)];
            }
        }
    }

    public void Answer(int call)
    {
        lock (_gate)
        {
            _calls[call].Answer.SetResult([IPAddress.Loopback]);
        }
    }

    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        var answer = new TaskCompletionSource<IPAddress[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _calls.Add((host, answer));
        }

        return await answer.Task.WaitAsync(cancellationToken);
    }
}
