namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>A clock that throws: stands in for a bug in the relay's own code (the transform reads the clock for track, screen and page).</summary>
internal sealed class BrokenClock : TimeProvider
{
    public const string Message = "the clock broke (a stand-in bug)";

    public override DateTimeOffset GetUtcNow() => throw new InvalidOperationException(Message);
}
