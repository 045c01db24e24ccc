using System.Globalization;

namespace Shadowsocks.Pipeline.Tests.Hosts;

/// <summary>What <c>/proc</c> says of a process the tests started: its children and its environment.</summary>
internal static class ProcessTree
{
    /// <summary>The process's children, from every thread's <c>/proc/PID/task/TID/children</c>.</summary>
    public static List<int> Children(int pid) =>
        Directory.GetDirectories($"/proc/{pid}/task")
            .SelectMany(task => File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(id => int.Parse(id, CultureInfo.InvariantCulture))
            .ToList();

    /// <summary>The process's environment variables (the last of a repeated name).</summary>
    public static Dictionary<string, string> Environment(int pid) =>
        File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(entry => entry.Split('=', 2))
            .Where(pair => pair.Length == 2)
            .GroupBy(pair => pair[0])
            .ToDictionary(g => g.Key, g => g.Last()[1]);
}
