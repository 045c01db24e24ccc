using System.CommandLine;
using System.CommandLine.Parsing;

namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>
/// The command line on System.CommandLine: one command per verb, each flag with its long name and ss-libev's short
/// alias, --help per verb. Parse errors become one line and exit code 2; a verb's action gets a
/// <see cref="ParsedArguments"/>.
/// </summary>
internal static class CommandLine
{
    public delegate Task<int> VerbAction(ParsedArguments args, CancellationToken cancellationToken);

    public static readonly IReadOnlyList<(string Verb, string Description, IReadOnlyList<Flag> Flags)> Verbs =
    [
        ("local", "SOCKS5 proxy (TCP CONNECT and UDP ASSOCIATE) that relays through a Shadowsocks server (like ss-local)", Flags.Relay),
        ("server", "the Shadowsocks server (like ss-server)", Flags.Relay),
        ("tunnel", "a fixed port forward through a server (like ss-tunnel)", Flags.Relay),
        ("demo", "server and local on loopback with a random key, a self-check, then a SOCKS5 port to try", Flags.Demo),
        ("methods", "list the methods: name, key size, salt/IV size", []),
        ("genkey", "a random base64 key for a method: genkey -m METHOD", Flags.GenKey),
    ];

    /// <summary>Builds the command tree; <paramref name="action"/> runs the chosen verb.</summary>
    public static RootCommand Build(VerbAction action)
    {
        var root = new RootCommand("shadowsocks: a Shadowsocks proxy (local, server, tunnel) built as a reactive dataflow pipeline");
        foreach (var (verb, description, flags) in Verbs)
        {
            var command = new Command(verb, description);
            var options = new List<(Flag Flag, Option Option)>();
            foreach (var flag in flags)
            {
                var option = Create(flag, verb);
                command.Options.Add(option);
                options.Add((flag, option));
            }

            command.SetAction((result, cancellationToken) => action(ToArguments(verb, result, options), cancellationToken));
            root.Subcommands.Add(command);
        }

        return root;
    }

    /// <summary>Parses one verb's flags (for tests and for code that has the verb already).</summary>
    public static ParsedArguments ParseVerb(string verb, IReadOnlyList<string> args)
    {
        ParsedArguments? parsed = null;
        var root = Build((a, _) =>
        {
            parsed = a;
            return Task.FromResult(0);
        });
        var result = root.Parse([verb, .. args]);
        ThrowOnErrors(result);
        result.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        return parsed ?? throw new UsageException($"{verb}: no such verb");
    }

    /// <summary>Turns the first parse error into a <see cref="UsageException"/> naming the flag or word.</summary>
    public static void ThrowOnErrors(ParseResult result)
    {
        if (result.UnmatchedTokens.Count > 0)
        {
            var token = result.UnmatchedTokens[0];
            var verb = result.CommandResult.Command is RootCommand ? "" : $" {result.CommandResult.Command.Name}";
            throw new UsageException(token.StartsWith('-')
                ? $"{token}: unknown option (see shadowsocks{verb} --help)"
                : result.CommandResult.Command is RootCommand
                    ? $"{token}: unknown verb; one of {string.Join(", ", Verbs.Select(v => v.Verb))}"
                    : $"{token}: unexpected argument (see shadowsocks{verb} --help)");
        }

        if (result.Errors.Count > 0)
        {
            var message = result.Errors[0].Message.Replace(Environment.NewLine, " ", StringComparison.Ordinal);
            const string missing = "Required argument missing for option: '";
            if (message.StartsWith(missing, StringComparison.Ordinal) && message.IndexOf('\'', missing.Length) is var end and > 0)
            {
                // A flag at the end of the line without its value (-k): say what to give, in this program's form.
                var command = result.CommandResult.Command is RootCommand ? "" : $" {result.CommandResult.Command.Name}";
                message = $"{message[missing.Length..end]}: needs a value after it (see shadowsocks{command} --help)";
            }

            throw new UsageException(result.CommandResult.Command is RootCommand
                ? $"{message} One of: {string.Join(", ", Verbs.Select(v => v.Verb))} (see shadowsocks --help)"
                : message);
        }
    }

    private static Option Create(Flag flag, string verb)
    {
        string[] aliases = flag.Alias is { } alias ? [alias] : [];
        if (flag.IsSwitch)
        {
            return new Option<bool>(flag.Name, aliases) { Description = flag.Help, Hidden = !flag.ShownFor(verb), Arity = ArgumentArity.Zero };
        }

        // Every valued flag may be repeated: -s twice names two servers; for the others the last value wins, as with getopt.
        return new Option<string[]>(flag.Name, aliases)
        {
            Description = flag.Help,
            Hidden = !flag.ShownFor(verb),
            HelpName = flag.HelpName,
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
    }

    private static ParsedArguments ToArguments(string verb, ParseResult result, List<(Flag Flag, Option Option)> options)
    {
        var values = new Dictionary<Flag, List<string>>();
        foreach (var (flag, option) in options)
        {
            if (result.GetResult(option) is { Implicit: false } given)
            {
                values[flag] = [.. given.Tokens.Select(t => t.Value)];
            }
        }

        // Where each flag was last given: flags that set one thing (-u and -U, -k and --password-env) take the last.
        var positions = new Dictionary<Flag, int>();
        for (var i = 0; i < result.Tokens.Count; i++)
        {
            var token = result.Tokens[i];
            if (token.Type == TokenType.Option && options.FirstOrDefault(o => o.Option.Name == token.Value || o.Option.Aliases.Contains(token.Value)) is { Option: not null } named)
            {
                positions[named.Flag] = i;
            }
        }

        return new ParsedArguments(verb, values, positions);
    }
}
