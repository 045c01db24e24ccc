namespace Shadowsocks.Pipeline.Core.Scheduling;

/// <summary>
/// A task scheduler for per-connection blocks. The tasks a thread queues inside <see cref="Run{TState, TResult}"/>
/// run on that same thread, one after another, once the scope's own call has returned. Tasks queued anywhere else go
/// to the thread pool, as with the default scheduler.
/// <para>
/// Why: a short burst (a request, a reply) handed to its blocks inside a scope goes from the pump through every block
/// on the pump's thread. Through the pool, each block's task was a hand-off, and each hand-off woke an idle worker
/// that found nothing to do (the pump's thread took the task) and spun before it slept again.
/// </para>
/// <para>
/// The tasks run after the call that queued them has returned, not inside it: Dataflow starts a block's task while
/// it holds the block's lock, and a block run there would take the next block's lock under it.
/// </para>
/// </summary>
internal sealed class CallerDrainScheduler : TaskScheduler
{
    public static readonly CallerDrainScheduler Instance = new();

    private static readonly Action<Task> s_execute = static task => Instance.TryExecuteTask(task);

    /// <summary>The queue of the scope this thread is in; null outside a scope.</summary>
    [ThreadStatic]
    private static Queue<Task>? t_scope;

    /// <summary>A queue kept between this thread's scopes.</summary>
    [ThreadStatic]
    private static Queue<Task>? t_spare;

    private CallerDrainScheduler()
    {
    }

    /// <summary>Whether this thread is inside a scope (tasks for this scheduler queued now run on it).</summary>
    public static bool InScope => t_scope is not null;

    /// <summary>
    /// Calls <paramref name="call"/>, then runs on this thread every task queued to this scheduler meanwhile,
    /// and every task those queue, until none is left. Nested in another scope, it only calls: the outer scope runs them.
    /// </summary>
    public static TResult Run<TState, TResult>(Func<TState, TResult> call, TState state)
    {
        if (t_scope is not null)
        {
            return call(state);
        }

        var queue = t_spare ?? new Queue<Task>();
        t_spare = null;
        t_scope = queue;
        try
        {
            return call(state);
        }
        finally
        {
            // Also when the call threw: what it queued must still run.
            while (queue.TryDequeue(out var task))
            {
                Instance.TryExecuteTask(task);
            }

            t_scope = null;
            t_spare = queue;
        }
    }

    protected override void QueueTask(Task task)
    {
        if (t_scope is { } queue)
        {
            queue.Enqueue(task);
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(s_execute, task, preferLocal: true);
    }

    /// <summary>Inline as the default scheduler allows it (a continuation that asked to run synchronously), but never twice.</summary>
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => !taskWasPreviouslyQueued && TryExecuteTask(task);

    protected override IEnumerable<Task> GetScheduledTasks() => t_scope?.ToArray() ?? [];
}
