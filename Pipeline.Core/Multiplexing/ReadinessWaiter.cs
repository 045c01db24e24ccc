namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// One pending wait on a <see cref="SocketInterest"/>. Its continuations run on the thread pool, never on the
/// readiness loop's thread, so the loop only ever reports and moves on.
/// </summary>
internal sealed class ReadinessWaiter(SocketInterest interest) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
{
    public SocketInterest Interest { get; } = interest;

    /// <summary>The caller's cancellation, unregistered when the wait ends either way.</summary>
    public CancellationTokenRegistration Registration { get; set; }

    public void Complete()
    {
        Registration.Unregister();
        TrySetResult();
    }
}
