using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// What a local's or tunnel's streams to the server share, for the 2022 methods: the salts of the server's responses
/// (SIP022 § 3.1.4: a client too refuses a salt seen in the last minute) and the identity headers its requests carry
/// (SIP023). Both null for the other methods.
/// </summary>
internal sealed record ClientSide(ISaltFilter? ResponseSalts, IdentityChain? Identities)
{
    public static ClientSide For(RelayOptions options, TimeProvider time) =>
        new(SaltFilters.ForResponses(options, time), IdentityChain.For(options));
}
