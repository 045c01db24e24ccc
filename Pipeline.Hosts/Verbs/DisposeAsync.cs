namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary>Lets a synchronous disposable (the resolver) sit in the list of things a verb stops at exit.</summary>
internal sealed class DisposeAsync(IDisposable inner) : IAsyncDisposable
{
    ValueTask IAsyncDisposable.DisposeAsync()
    {
        inner.Dispose();
        return ValueTask.CompletedTask;
    }
}
