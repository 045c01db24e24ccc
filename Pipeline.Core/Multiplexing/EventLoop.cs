using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Reactive.Disposables;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// A multiplexer of our own: one thread, one epoll set. A socket's readiness to read is an observable
/// (<see cref="Readable"/>; subscribing adds the socket to the set, disposing removes it), and Dataflow blocks given
/// <see cref="Scheduler"/> run their work on the same thread, between two <c>epoll_wait</c>s. A datagram is then
/// received, passed through every stage and sent without leaving the thread: no hand-off to a pool worker and no
/// wake-up per datagram, where .NET's socket engine wakes its epoll thread and then a pool thread for each
/// completion (the UDP profile in bench/RESULTS.md). One <c>epoll_wait</c> reports every socket that has data, as
/// ss-libev's loop does. Work queued from other threads (a DNS answer's continuation) wakes the loop through an
/// eventfd.
/// </summary>
internal sealed unsafe class EventLoop : IDisposable
{
    private const int MaxEvents = 64;

    /// <summary>Queued tasks run per turn before I/O is polled again, so a busy pipeline cannot starve the sockets.</summary>
    private const int MaxTasksPerTurn = 1024;

    private const ulong WakeId = 0;

    /// <summary>
    /// Empty polls, each followed by a yield of the core, before the loop blocks (<see cref="PollThenWait"/>): about
    /// 30 µs when nothing else wants the core. `conn_cpu.py 4` against the loop that blocked at once: 1.10–1.14× the
    /// connection rate and 15–20 % less CPU per request in both processes with 5 to 50 (20 chosen), bulk the same
    /// (bench/RESULTS.md, 2026-11-27, tenth session); an idle loop still blocks, once, after its last event.
    /// </summary>
    private const int SpinPolls = 20;

    private readonly int _epoll;
    /// <summary>
    /// The eventfd, as a handle: a task queued from another thread after the loop stopped (a DNS answer reaching a
    /// disposed relay's stage) finds it closed, and never writes its wake-up to a descriptor number that another file
    /// (a connection's socket) has taken since; a wake-up under way keeps it open until it is done.
    /// </summary>
    private readonly SafeFileHandle _wake;
    private readonly Thread _thread;
    private readonly ConcurrentDictionary<ulong, Action<ulong, uint>> _handlers = new();
    private readonly ConcurrentQueue<Task> _tasks = new();
    private readonly EventLoopTaskScheduler _scheduler;
    private ulong _nextId = WakeId;
    private int _wakePending;
    private volatile bool _stopping;

    public EventLoop(string name)
    {
        _epoll = Epoll.Create(Epoll.CloseOnExec);
        if (_epoll < 0)
        {
            throw Epoll.LastError("epoll_create1");
        }

        var wakeFd = Epoll.EventFd(0, Epoll.CloseOnExec | Epoll.NonBlocking);
        if (wakeFd < 0)
        {
            var error = Epoll.LastError("eventfd");
            Epoll.Close(_epoll);
            throw error;
        }

        _wake = new SafeFileHandle(wakeFd, ownsHandle: true);

        var wake = new Epoll.Event { Events = Epoll.In, Data = WakeId };
        if (Epoll.Control(_epoll, Epoll.CtlAdd, _wake, &wake) != 0)
        {
            var error = Epoll.LastError("epoll_ctl");
            _wake.Dispose();
            Epoll.Close(_epoll);
            throw error;
        }

        _scheduler = new EventLoopTaskScheduler(this);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Runs tasks on the loop's thread: give it to the blocks whose work should stay beside the sockets.</summary>
    public TaskScheduler Scheduler => _scheduler;

    public bool IsLoopThread => Thread.CurrentThread == _thread;

    /// <summary>Ids whose events still have a handler (armed interests and subscriptions): a leak shows here.</summary>
    internal int HandlerCount => _handlers.Count;

    /// <summary>
    /// The socket's readiness to read, level-triggered: each notification (on the loop's thread) means at least one
    /// receive will not block; data left unread is reported again on the next turn.
    /// </summary>
    public IObservable<Socket> Readable(Socket socket) =>
        new DirectObservable<Socket>(observer => Register(socket, (_, _) => observer.OnNext(socket)));

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        Wake();
        if (!IsLoopThread)
        {
            _thread.Join();
        }

        _wake.Dispose();
        Epoll.Close(_epoll);
    }

    internal void Queue(Task task)
    {
        _tasks.Enqueue(task);
        if (!IsLoopThread)
        {
            Wake();
        }
    }

    /// <summary>
    /// Arms a one-shot, level-triggered interest in <paramref name="events"/> for <paramref name="handle"/>: the
    /// first of them that holds (now or later) is reported once to <paramref name="handler"/> with the id returned
    /// here, on the loop's thread, and the interest is then off until armed again. <paramref name="add"/> is true the
    /// first time a descriptor is armed (then it joins the set; afterwards its interest is modified). Arming again
    /// replaces the previous interest and its id; an id given up with <see cref="Forget"/> is never reported.
    /// </summary>
    internal ulong ArmOnce(SafeHandle handle, uint events, bool add, Action<ulong, uint> handler) =>
        Control(handle, add ? Epoll.CtlAdd : Epoll.CtlMod, events | Epoll.OneShot, handler);

    /// <summary>Gives up an id from <see cref="ArmOnce"/>: an event for it that is still on its way finds no handler.</summary>
    internal void Forget(ulong id) => _handlers.TryRemove(id, out _);

    private IDisposable Register(Socket socket, Action<ulong, uint> onReadable)
    {
        var handle = socket.SafeHandle;
        var id = Control(handle, Epoll.CtlAdd, Epoll.In, onReadable);
        return Disposable.Create(() =>
        {
            // Events already taken from the kernel for this id find no handler and are ignored.
            if (_handlers.TryRemove(id, out _) && !handle.IsClosed && !_stopping)
            {
                try
                {
                    Epoll.Control(_epoll, Epoll.CtlDel, handle, null);
                }
                catch (ObjectDisposedException)
                {
                    // Closed meanwhile: closing the descriptor took it out of the set.
                }
            }
        });
    }

    /// <summary>Adds or modifies <paramref name="handle"/>'s interest under a new id whose events go to <paramref name="handler"/>.</summary>
    private ulong Control(SafeHandle handle, int operation, uint events, Action<ulong, uint> handler)
    {
        var id = Interlocked.Increment(ref _nextId);
        _handlers[id] = handler;
        var ev = new Epoll.Event { Events = events, Data = id };
        try
        {
            if (Epoll.Control(_epoll, operation, handle, &ev) != 0)
            {
                throw Epoll.LastError("epoll_ctl");
            }
        }
        catch
        {
            // A failed call, or a closed handle (ObjectDisposedException before the call): no handler stays behind.
            _handlers.TryRemove(id, out _);
            throw;
        }

        return id;
    }

    private void Wake()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            ulong one = 1;
            try
            {
                Epoll.Write(_wake, &one, sizeof(ulong));
            }
            catch (ObjectDisposedException)
            {
                // The loop has stopped: there is no one to wake, and the task is never run.
            }
        }
    }

    private void Run()
    {
        var events = stackalloc Epoll.Event[MaxEvents];
        while (!_stopping)
        {
            RunTasks();
            var count = PollThenWait(events);
            if (count < 0)
            {
                continue; // EINTR (a signal): poll again
            }

            for (var i = 0; i < count; i++)
            {
                var id = events[i].Data;
                if (id == WakeId)
                {
                    ulong value;
                    try
                    {
                        Epoll.Read(_wake, &value, sizeof(ulong));
                    }
                    catch (ObjectDisposedException)
                    {
                        break; // disposed by a handler on this thread: the loop ends
                    }

                    Volatile.Write(ref _wakePending, 0);
                }
                else if (_handlers.TryGetValue(id, out var handler))
                {
                    Invoke(handler, id, events[i].Events);
                }
            }
        }
    }

    /// <summary>
    /// Polls up to <see cref="SpinPolls"/> times, yielding the core between polls, before it blocks in
    /// <c>epoll_wait</c>: under load the next event comes within microseconds, and a loop thread that is still
    /// runnable takes it without being woken. Waking a blocked thread costs both sides a switch and, on a virtual
    /// machine whose idle vCPU halts, the host's help. With tasks queued it only polls, once. Returns the events' count.
    /// </summary>
    private int PollThenWait(Epoll.Event* events)
    {
        for (var poll = 0; poll < SpinPolls && _tasks.IsEmpty; poll++)
        {
            var count = Epoll.Wait(_epoll, events, MaxEvents, 0);
            if (count != 0)
            {
                return count;
            }

            Thread.Yield();
        }

        return Epoll.Wait(_epoll, events, MaxEvents, _tasks.IsEmpty ? -1 : 0);
    }

    private void RunTasks()
    {
        for (var i = 0; i < MaxTasksPerTurn && _tasks.TryDequeue(out var task); i++)
        {
            _scheduler.Execute(task);
        }
    }

    private static void Invoke(Action<ulong, uint> handler, ulong id, uint events)
    {
        try
        {
            handler(id, events);
        }
        catch (Exception e)
        {
            // A handler's failure belongs to its own socket; the loop serves the others. Counted, and traced for
            // whoever listens (a bug, never an expected outcome: the UDP handlers turn every failure into a drop).
            PipelineTelemetry.LoopHandlerFailures.Add(1);
            Trace.TraceError($"event loop handler failed: {e}");
        }
    }
}
