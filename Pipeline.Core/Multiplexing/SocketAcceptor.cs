using System.Net.Sockets;
using System.Reactive.Disposables;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>A listening socket's accepts as an observable: one <see cref="Socket"/> per accepted connection.</summary>
internal static class SocketAcceptor
{
    /// <summary>How long accepts pause when the process is out of descriptors: the connection waits in the backlog.</summary>
    internal static readonly TimeSpan ExhaustedPause = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Accepts until the subscription is disposed or the listener is closed: what waits in the backlog at once, and
    /// when it is empty, after the listener's readiness on <see cref="SocketReadiness"/>'s loop. The observer receives
    /// the connected socket with Nagle's algorithm off.
    /// Errors of a single accept (a client that reset before it was accepted) are skipped; a closed listener completes.
    /// Out of file descriptors (<c>EMFILE</c>, <c>ENFILE</c>) or kernel buffers, accepts pause for
    /// <see cref="ExhaustedPause"/> (on <paramref name="timeProvider"/>) instead of retrying at once: the listener stays
    /// readable, so retrying would spin a core while the open connections need it.
    /// </summary>
    /// <param name="slot">
    /// Awaited before each accept (a connection limit): while it is pending, new connections wait in the kernel's
    /// backlog instead of being accepted and refused.
    /// </param>
    /// <param name="accept">The accept call (tests stand a failing one in: running out of descriptors cannot be staged otherwise).</param>
    public static IObservable<Socket> Accepts(
        Socket listener, Func<CancellationToken, Task>? slot = null, TimeProvider? timeProvider = null, Func<Socket, Socket>? accept = null) =>
        new DirectObservable<Socket>(observer =>
        {
            var stop = new CancellationTokenSource();
            _ = AcceptAsync(listener, observer, slot, timeProvider ?? TimeProvider.System, accept, stop.Token);
            return Disposable.Create(stop.Cancel);
        });

    /// <summary>
    /// The accept loop of one subscription, started on the subscribing thread. Ends with <c>OnCompleted</c> when an
    /// accept finds the listener closed, with nothing once the subscription is disposed (an accept that raced the
    /// disposal is closed, not delivered), and with <c>OnError</c> on anything unexpected. The relays dispose the
    /// subscription before they close the listener: a readiness wait does not see its descriptor close.
    /// </summary>
    private static async Task AcceptAsync(
        Socket listener, IObserver<Socket> observer, Func<CancellationToken, Task>? slot, TimeProvider timeProvider, Func<Socket, Socket>? accept,
        CancellationToken cancellationToken)
    {
        try
        {
            var holdingSlot = false;
            var exhausted = false;
            while (!cancellationToken.IsCancellationRequested)
            {
                Socket accepted;
                try
                {
                    if (exhausted)
                    {
                        exhausted = false;
                        await Task.Delay(ExhaustedPause, timeProvider, cancellationToken).ConfigureAwait(false);
                    }

                    if (slot is not null && !holdingSlot)
                    {
                        await slot(cancellationToken).ConfigureAwait(false);
                        holdingSlot = true;
                    }

                    // A poll(2) first, since an accept that finds the backlog empty throws; but not right after the
                    // readiness wait, which has just said a connection is waiting (one system call fewer per wake-up;
                    // if another process sharing the port took it meanwhile, the accept's error is skipped below).
                    var reported = false;
                    while (!reported && !listener.Poll(0, SelectMode.SelectRead))
                    {
                        // Nobody waiting in the backlog: wait for the next connection on the readiness loop.
                        listener.Blocking = false;
                        await SocketReadiness.ReadableAsync(listener, cancellationToken).ConfigureAwait(false);
                        reported = true;
                    }

                    accepted = accept is null ? listener.Accept() : accept(listener);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (ObjectDisposedException)
                {
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument or SocketError.NotSocket)
                {
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                {
                    // What ran out (descriptors, or kernel memory: ENOBUFS, ENOMEM): mended differently, so told apart.
                    PipelineTelemetry.AcceptsPostponed.Add(1, new KeyValuePair<string, object?>(TagNames.Reason, e.SocketErrorCode.ToString()));
                    exhausted = true;
                    continue;
                }
                catch (SocketException)
                {
                    continue; // that client is gone (reset before it was accepted); the slot stays for the next one
                }

                if (cancellationToken.IsCancellationRequested)
                {
                    accepted.Dispose(); // accepted as the subscription was disposed: nobody would take it
                    break;
                }

                try
                {
                    accepted.NoDelay = true;
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    accepted.Dispose(); // gone between the accept and its set-up; the slot stays for the next one
                    continue;
                }

                holdingSlot = false; // the accepted connection holds it now
                observer.OnNext(accepted);
            }

            if (cancellationToken.IsCancellationRequested)
            {
                return; // disposed: the subscriber asked for nothing more
            }
        }
        catch (Exception e)
        {
            observer.OnError(e);
            return;
        }

        observer.OnCompleted();
    }
}
