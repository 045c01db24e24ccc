namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>What a wait on a socket's <see cref="SocketInterest"/> is for.</summary>
internal enum Readiness
{
    /// <summary>A receive will not block: data, end of stream or an error.</summary>
    Readable,

    /// <summary>A send will not block, a connect has finished, or an error.</summary>
    Writable,

    /// <summary>Only an error (a reset) or a hang-up: for a socket read to its end, which stays readable for good.</summary>
    Broken,
}
