using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Resolve;

/// <summary>
/// Shared, connection-level (server): the destination's addresses; IP literals pass straight through. A host name the
/// ACL's outbound block list names (<c>--acl</c>) is refused before it is looked up.
/// </summary>
internal static class ResolveStage
{
    public const string Name = "resolve";

    public static TransformBlock<TcpSession, TcpSession> Create(StageOptions options, IDnsResolver resolver, AccessControlList? acl = null) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            if (session.Destination.Host is { } name && acl?.BlocksOutbound(name) == true)
            {
                session.ResolvedAddresses = [];
                session.Fail($"{name} is refused by the ACL (outbound_block_list)");
                return session;
            }

            if (session.Destination.Ip is { } ip)
            {
                session.ResolvedAddresses = [ip];
                return session;
            }

            using var span = StageActivity.Start(Name, session, options);
            span?.SetTag("dns.question.name", session.Destination.Host);
            try
            {
                session.ResolvedAddresses = await resolver.ResolveAsync(session.Destination.Host!, session.Cancellation.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                session.ResolvedAddresses = [];
            }

            if (session.ResolvedAddresses.Length == 0)
            {
                var reason = $"cannot resolve {session.Destination.Host}";
                span.Fail(reason);
                session.Fail(reason);
            }

            return session;
        }), BlockOptions.Shared(options));
}
