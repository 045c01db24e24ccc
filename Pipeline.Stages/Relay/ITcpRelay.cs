namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>A TCP relay's graceful stop: close the listener, then let open connections finish (the host waits on <see cref="ServingSessions"/>).</summary>
internal interface ITcpRelay : IAsyncDisposable
{
    /// <summary>Connections open now.</summary>
    int ActiveSessions { get; }

    /// <summary>
    /// Connections open now but a server's drained clients (<see cref="Connections.TcpSession.Drained"/>: they carry no
    /// user's data): what a graceful stop waits for. A client that fails while the stop waits is left out as well; the
    /// relay's disposal ends it.
    /// </summary>
    int ServingSessions { get; }

    /// <summary>
    /// Closes the listener; open connections go on until they end or the relay is disposed. A server also ends its
    /// drained clients, closed as a drain's end closes them (a FIN, nothing sent).
    /// </summary>
    void StopAccepting();
}
