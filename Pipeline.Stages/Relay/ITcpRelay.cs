namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>A TCP relay's graceful stop: close the listener, then let open connections finish (the host waits on <see cref="ActiveSessions"/>).</summary>
internal interface ITcpRelay : IAsyncDisposable
{
    /// <summary>Connections open now.</summary>
    int ActiveSessions { get; }

    /// <summary>Closes the listener; open connections go on until they end or the relay is disposed.</summary>
    void StopAccepting();
}
