using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Dns;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Resolve;

namespace Shadowsocks.Pipeline.Stages.Route;

/// <summary>
/// Shared, connection-level (local with an ACL, <c>--acl</c>): whether the destination is reached directly or through
/// the server, decided as ss-local does. A host name a bypass-list rule names goes directly, one a proxy-list rule
/// names through the server; any other name is looked up here and its first address decides, as an address
/// destination does (<see cref="AccessControlList.Bypasses(IPAddress)"/>). A name that does not resolve goes through
/// the server. A direct session carries the addresses to connect to.
/// </summary>
internal static class RouteStage
{
    public const string Name = "route";

    /// <param name="lookups">The slots for lookups in flight; by default, the stage's parallelism's.</param>
    public static TransformBlock<TcpSession, TcpSession> Create(StageOptions options, AccessControlList acl, IDnsResolver resolver, LookupSlots? lookups = null)
    {
        // The stage's parallelism bounds the lookups in flight, not the connections in the block (as the server's
        // resolve stage does): when it counted the connections, lookups that hang held every other connection behind
        // them, those to addresses and to names a rule decides too. The block's capacity still bounds what it holds.
        // Connections to one name share its lookup and its slot.
        lookups ??= new LookupSlots(options.MaxParallelism);
        var blockOptions = BlockOptions.Shared(options);
        blockOptions.MaxDegreeOfParallelism = DataflowBlockOptions.Unbounded;
        return new(StageGuard.Isolate(Name, async session =>
        {
            using var span = StageActivity.Start(Name, session, options);
            if (session.Destination.Ip is { } ip)
            {
                session.Direct = acl.Bypasses(ip);
                session.ResolvedAddresses = [ip];
            }
            else
            {
                var byName = acl.BypassesName(session.Destination.Host!);
                if (byName is not false) // through the server by name needs no lookup here
                {
                    var addresses = await LookUpAsync(resolver, lookups, session).ConfigureAwait(false);
                    session.Direct = addresses.Length > 0 && (byName ?? acl.Bypasses(addresses[0]));
                    session.ResolvedAddresses = addresses;
                }
            }

            span?.SetTag(TagNames.Route, session.Direct ? "direct" : "server");
            return session;
        }), blockOptions);
    }

    private static async ValueTask<IPAddress[]> LookUpAsync(IDnsResolver resolver, LookupSlots lookups, TcpSession session)
    {
        try
        {
            return await lookups.ResolveAsync(resolver, session.Destination.Host!, session.Cancellation.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            return [];
        }
    }
}
