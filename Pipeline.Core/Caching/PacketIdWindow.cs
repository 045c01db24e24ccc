namespace Shadowsocks.Pipeline.Core.Caching;

/// <summary>
/// A sliding-window replay filter over one UDP session's packet IDs (SIP022 § 3.2.4): an ID is taken once, and only
/// if it is within <see cref="Size"/> of the highest taken so far; older ones are refused as replays. A bitmap of the
/// window, moved forward as higher IDs arrive (RFC 6479's scheme, without its blocks). Not thread-safe: the session
/// that owns it serialises its use.
/// </summary>
internal sealed class PacketIdWindow
{
    /// <summary>How far behind the highest ID a late packet may be (reordering on the path).</summary>
    public const int Size = 1024;

    private readonly ulong[] _bits = new ulong[Size / 64];
    private ulong _highest;
    private bool _any;

    /// <summary>Takes <paramref name="id"/>; false for an ID already taken or too far behind.</summary>
    public bool TryTake(ulong id)
    {
        if (!_any || id > _highest)
        {
            var advance = _any ? id - _highest : ulong.MaxValue;
            if (advance >= Size)
            {
                Array.Clear(_bits);
            }
            else
            {
                for (var next = _highest + 1; next < id; next++)
                {
                    Clear(next);
                }
            }

            _highest = id;
            _any = true;
            Set(id);
            return true;
        }

        if (_highest - id >= Size || IsSet(id))
        {
            return false;
        }

        Set(id);
        return true;
    }

    private bool IsSet(ulong id) => (_bits[(int)(id / 64 % (Size / 64))] & (1UL << (int)(id % 64))) != 0;

    private void Set(ulong id) => _bits[(int)(id / 64 % (Size / 64))] |= 1UL << (int)(id % 64);

    private void Clear(ulong id) => _bits[(int)(id / 64 % (Size / 64))] &= ~(1UL << (int)(id % 64));
}
