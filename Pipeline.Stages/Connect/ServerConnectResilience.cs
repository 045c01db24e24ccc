using System.Net.Sockets;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>
/// The Polly pipeline around a local's connect to its Shadowsocks server: each attempt has a timeout; refused,
/// unreachable or timed-out attempts are retried with a short exponential back-off.
/// </summary>
internal static class ServerConnectResilience
{
    /// <summary>First retry delay; doubles after each attempt.</summary>
    private static readonly TimeSpan s_firstRetryDelay = TimeSpan.FromMilliseconds(50);

    public static ResiliencePipeline Create(TimeSpan attemptTimeout, int retries, TimeProvider timeProvider)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = timeProvider };
        if (retries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = retries,
                Delay = s_firstRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                ShouldHandle = new PredicateBuilder().Handle<SocketException>().Handle<TimeoutRejectedException>(),
            });
        }

        return builder.AddTimeout(attemptTimeout).Build();
    }
}
