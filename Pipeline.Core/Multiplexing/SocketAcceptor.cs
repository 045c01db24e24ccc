using System.Net.Sockets;
using System.Reactive.Linq;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>A listening socket's accepts as an observable: one <see cref="Socket"/> per accepted connection.</summary>
internal static class SocketAcceptor
{
    /// <summary>
    /// Accepts until the subscription is disposed or the listener is closed. Each accept completes on the platform's
    /// epoll engine; the observer receives the connected socket with Nagle's algorithm off.
    /// Errors of a single accept (a client that reset before it was accepted) are skipped; a closed listener completes.
    /// </summary>
    /// <param name="slot">
    /// Awaited before each accept (a connection limit): while it is pending, new connections wait in the kernel's
    /// backlog instead of being accepted and refused.
    /// </param>
    public static IObservable<Socket> Accepts(Socket listener, Func<CancellationToken, Task>? slot = null) =>
        Observable.Create<Socket>(async (observer, cancellationToken) =>
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                Socket accepted;
                try
                {
                    if (slot is not null)
                    {
                        await slot(cancellationToken).ConfigureAwait(false);
                    }

                    accepted = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (ObjectDisposedException)
                {
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument)
                {
                    break;
                }
                catch (SocketException)
                {
                    continue;
                }

                accepted.NoDelay = true;
                observer.OnNext(accepted);
            }

            observer.OnCompleted();
        });
}
