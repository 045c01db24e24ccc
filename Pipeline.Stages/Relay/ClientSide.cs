using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// What a local's or tunnel's streams to the server share, for the 2022 methods: the identity headers its requests
/// carry (SIP023); null for the other methods and without identity keys. The salts of the server's responses are not
/// remembered (SIP022 § 3.1.5: a client SHOULD NOT; the request salt each response header names binds it).
/// </summary>
internal sealed record ClientSide(IdentityChain? Identities)
{
    public static ClientSide For(RelayOptions options) => new(IdentityChain.For(options));
}
