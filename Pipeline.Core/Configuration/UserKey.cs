namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>One user of a multi-user 2022 server (SIP023): a name for logs and traces, and the user's key (uPSK).</summary>
internal sealed record UserKey(string Name, byte[] Key);
