namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary>The --help texts.</summary>
internal static class Usage
{
    public const string General = """
        usage: shadowsocks VERB [options]

        verbs:
          local     SOCKS5 proxy that relays through a Shadowsocks server (like ss-local)
          server    the Shadowsocks server (like ss-server)
          tunnel    a fixed port forward through a server (like ss-tunnel)
          demo      server and local on loopback with a random key, a self-check, then a SOCKS5 port to try
          methods   list the methods: name, key size, salt/IV size
          genkey    a random base64 key for a method: genkey -m METHOD

        shadowsocks VERB --help shows the verb's options.
        """;

    public const string Relay = """
        usage:
          shadowsocks server -s ADDR -p PORT (-k PASSWORD | --key BASE64) -m METHOD [-t SECONDS] [-u | -U] [-c config.json] [-v]
          shadowsocks local  -s SERVER -p SERVER_PORT [-b LOCAL_ADDR] -l LOCAL_PORT (-k PASSWORD | --key BASE64) -m METHOD [...]
          shadowsocks tunnel -s SERVER -p SERVER_PORT [-b LOCAL_ADDR] -l LOCAL_PORT -L DEST_HOST:DEST_PORT (-k | --key) -m METHOD [...]

        options (the same flags as shadowsocks-libev; a flag beats the config file):
          -s ADDR            server: address to listen on (default 0.0.0.0); local/tunnel: the server's address
          -p PORT            the server's port
          -b ADDR            local/tunnel: address to listen on (default 127.0.0.1)
          -l PORT            local/tunnel: port to listen on
          -L HOST:PORT       tunnel: the fixed destination
          -k PASSWORD        password (a key is derived with EVP_BytesToKey)
          --key BASE64       the key itself, base64 of exactly the method's key length
          --password-env VAR read the password from environment variable VAR (also SHADOWSOCKS_PASSWORD)
          -m METHOD          encryption method (default chacha20-ietf-poly1305; see: shadowsocks methods)
          -t SECONDS         idle timeout (default 60)
          -u / -U            TCP and UDP / UDP only
          -6                 prefer IPv6 when resolving
          -c FILE            config.json (server, server_port, local_address, local_port, password, key, method, timeout, mode)
          -v                 verbose
          --traces DIR       write OTLP/JSON trace files into DIR (Jaeger: Search -> Upload); OTEL_EXPORTER_OTLP_ENDPOINT sends OTLP
          --fast-open        accepted for compatibility
        """;
}
