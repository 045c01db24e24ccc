namespace Shadowsocks.Pipeline.Core.Dns;

/// <summary>What parsing an answer found. Everything but <see cref="Ok"/> means: ignore this message.</summary>
internal enum DnsParseStatus
{
    Ok,

    /// <summary>Shorter than its own counts and lengths say, or a field out of range.</summary>
    Malformed,

    /// <summary>Name compression pointers that loop or point forward.</summary>
    CompressionLoop,

    /// <summary>Not a response, or the ID is not the query's.</summary>
    WrongId,

    /// <summary>The question section does not repeat the query's question.</summary>
    WrongQuestion,

    /// <summary>Larger than any answer this resolver accepts.</summary>
    Oversized,
}
