namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// Runs tasks on an <see cref="EventLoop"/>'s thread, one after another, between its polls. Never inline: a task is
/// always queued, so a block started from inside another block's work runs after it, not nested within it (Dataflow
/// starts a block's task while holding the block's lock).
/// </summary>
internal sealed class EventLoopTaskScheduler(EventLoop loop) : TaskScheduler
{
    public override int MaximumConcurrencyLevel => 1;

    internal void Execute(Task task) => TryExecuteTask(task);

    protected override void QueueTask(Task task) => loop.Queue(task);

    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

    protected override IEnumerable<Task> GetScheduledTasks() => [];
}
