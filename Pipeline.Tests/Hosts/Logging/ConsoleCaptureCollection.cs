namespace Shadowsocks.Pipeline.Tests.Hosts.Logging;

/// <summary>Tests that replace <see cref="Console.Out"/> to read what the console logger writes run alone.</summary>
[CollectionDefinition(nameof(ConsoleCaptureCollection), DisableParallelization = true)]
public sealed class ConsoleCaptureCollection;
