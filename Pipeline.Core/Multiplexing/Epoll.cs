using System.Runtime.InteropServices;

namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>
/// The Linux calls <see cref="EventLoop"/> needs: epoll, an eventfd to wake the loop, a <c>recvfrom</c> that never
/// waits (MSG_DONTWAIT, whatever the socket's mode) and reads the sender's address as the kernel wrote it, and a
/// <c>connect</c> whose "in progress" is a return value (.NET's non-blocking connect throws it as an exception), and
/// the send queue's length (<c>ioctl(SIOCOUTQ)</c>, which .NET's <c>IOControl</c> does not pass on).
/// Socket arguments are <see cref="SafeHandle"/>s, so a socket disposed on another thread is not closed (and its
/// descriptor not reused) while a call is using it.
/// </summary>
internal static unsafe partial class Epoll
{
    public const uint In = 0x001;
    public const uint Out = 0x004;
    public const uint Error = 0x008;
    public const uint HangUp = 0x010;
    public const uint ReadHangUp = 0x2000;
    public const uint OneShot = 1u << 30;
    public const int CtlAdd = 1;
    public const int CtlDel = 2;
    public const int CtlMod = 3;
    public const int CloseOnExec = 0x80000;
    public const int NonBlocking = 0x800;
    public const int DontWait = 0x40;
    public const int InProgress = 115; // EINPROGRESS
    public const int Interrupted = 4; // EINTR

    /// <summary>struct epoll_event: packed on x86-64 (12 bytes), naturally aligned elsewhere (16).</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    public struct Event
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int Create(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int Control(int epoll, int operation, int fd, Event* ev);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int Control(int epoll, int operation, SafeHandle fd, Event* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int Wait(int epoll, Event* events, int maxEvents, int timeoutMilliseconds);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nint count);

    /// <summary>As <see cref="Read(int, void*, nint)"/>, on a descriptor that cannot close (and be reused) during the call.</summary>
    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(SafeHandle fd, void* buffer, nint count);

    /// <summary>As <see cref="Write(int, void*, nint)"/>, on a descriptor that cannot close (and be reused) during the call.</summary>
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(SafeHandle fd, void* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(SafeHandle socket, byte* address, int addressLength);

    /// <summary><c>SIOCOUTQ</c>: bytes in a TCP socket's send queue, sent or not, that its peer has not acknowledged.</summary>
    public const nuint OutQueue = 0x5411;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int IoControl(SafeHandle socket, nuint request, out int value);

    [LibraryImport("libc", EntryPoint = "recvfrom", SetLastError = true)]
    public static partial nint ReceiveFrom(SafeHandle socket, byte* buffer, nint length, int flags, byte* address, ref int addressLength);

    /// <summary>The errno of the call that just failed, as an exception naming the call.</summary>
    public static IOException LastError(string call) => new($"{call} failed: {Marshal.GetLastPInvokeErrorMessage()}");
}
