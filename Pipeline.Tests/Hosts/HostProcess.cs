using System.Diagnostics;
using System.Net;
using System.Text;

namespace Shadowsocks.Pipeline.Tests.Hosts;

/// <summary>The real <c>shadowsocks</c> program as a child process (built next to the tests), stopped with SIGTERM.</summary>
internal sealed class HostProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<IPEndPoint> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HostProcess(Process process) => _process = process;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static Task<(HostProcess Host, IPEndPoint Listening)> StartAsync(IDictionary<string, string> environment, params string[] args) =>
        StartAsync(null, environment, args);

    /// <summary>Starts <paramref name="executable"/> (a native publish), or the built program when null.</summary>
    public static async Task<(HostProcess Host, IPEndPoint Listening)> StartAsync(string? executable, IDictionary<string, string> environment, params string[] args)
    {
        var host = Launch(executable, environment, args);
        var listening = await host._listening.Task.WaitAsync(TimeSpan.FromSeconds(20));
        return (host, listening);
    }

    /// <summary>Starts the program without waiting for a line (<c>demo</c> says no " listening on ").</summary>
    public static HostProcess Launch(string? executable, IDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo(executable ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (executable is null)
        {
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "shadowsocks.dll"));
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var host = new HostProcess(Process.Start(info)!);
        host._process.OutputDataReceived += (_, e) => host.OnLine(e.Data);
        host._process.ErrorDataReceived += (_, e) => host.OnLine(e.Data);
        host._process.BeginOutputReadLine();
        host._process.BeginErrorReadLine();
        return host;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public void SendSigterm() => Signal("TERM");

    /// <summary>Sends the signal of that name (<c>HUP</c>, <c>TERM</c>, ...).</summary>
    public void Signal(string name)
    {
        using var kill = Process.Start("kill", [$"-{name}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Waits until the output has a line containing <paramref name="text"/> (the output so far included); false after <paramref name="limit"/>.</summary>
    public async Task<bool> WaitForOutputAsync(string text, TimeSpan limit)
    {
        var deadline = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (deadline.Elapsed > limit)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    /// <summary>Waits for the exit; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM and waits for the exit; returns how long it took and the exit code.</summary>
    public async Task<(TimeSpan Took, int ExitCode)> StopAsync(TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        SendSigterm();

        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the host did not exit within {limit} of SIGTERM. Output: {Output}");
        }

        return (clock.Elapsed, _process.ExitCode);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        // "... listening on 127.0.0.1:PORT tcp, method ..."
        var at = line.IndexOf(" listening on ", StringComparison.Ordinal);
        if (at >= 0 && IPEndPoint.TryParse(line[(at + 14)..].Split(' ')[0], out var endPoint))
        {
            _listening.TrySetResult(endPoint);
        }
    }
}
