using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>Issue 18 item 8 on the built app in local mode: one database has one relay even when the old lock file is
/// deleted, a dead-letter path that cannot be written stops start-up naming <c>Local__DeadLetterPath</c>, and a file that
/// is not a database is named as such.</summary>
[TestClass]
[DoNotParallelize]
public sealed class LocalStartupChecksTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, string> Settings(string database, string? deadLetters = null) => new()
    {
        ["Klaviyo__PrivateApiKey"] = "pk_startup_checks",
        ["Klaviyo__DryRun"] = "true",
        ["Local__DatabasePath"] = database,
        ["Local__DeadLetterPath"] = deadLetters ?? Path.Combine(Path.GetTempPath(), $"klaviyo-startup-{Guid.NewGuid():N}.jsonl"),
    };

    private static string TempDatabase() => Path.Combine(Path.GetTempPath(), $"klaviyo-startup-{Guid.NewGuid():N}.db");

    [TestMethod]
    public async Task SecondRelay_AfterTheLockFileIsDeleted_StillRefusesToStart()
    {
        var database = TempDatabase();
        await using var owner = await LocalAppProcess.StartAsync(Settings(database), Patience);
        File.Delete(database + ".lock"); // the lock of earlier versions: deleting it let a second relay in

        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => LocalAppProcess.StartAsync(Settings(database), Patience));

        Assert.Contains("Local__DatabasePath: another relay process holds", failure.Message);
        Assert.AreEqual(0, await owner.StopAsync(Patience));
    }

    [TestMethod]
    public async Task DeadLetterPathThatCannotBeWritten_StopsStartUpNamingTheSetting()
    {
        var blocker = Path.Combine(Path.GetTempPath(), $"klaviyo-startup-{Guid.NewGuid():N}.file");
        await File.WriteAllTextAsync(blocker, "a file, not a folder", TestContext.CancellationToken);

        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(
            () => LocalAppProcess.StartAsync(Settings(TempDatabase(), Path.Combine(blocker, "dead-letters.jsonl")), Patience));

        Assert.Contains("Local__DeadLetterPath: cannot write the dead-letter file", failure.Message);
        Assert.DoesNotContain("   at ", failure.Message, "a message, not a stack trace");
    }

    [TestMethod]
    public async Task DeadLetterPathThatIsAFolder_StopsStartUpNamingTheSetting()
    {
        var folder = Directory.CreateTempSubdirectory("klaviyo-startup-").FullName;

        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => LocalAppProcess.StartAsync(Settings(TempDatabase(), folder), Patience));

        Assert.Contains("Local__DeadLetterPath: cannot write the dead-letter file", failure.Message);
    }

    [TestMethod]
    public async Task DatabaseFileThatIsNotADatabase_IsNamedAsSuch()
    {
        var database = TempDatabase();
        await File.WriteAllBytesAsync(database, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 37 % 251))], TestContext.CancellationToken);

        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => LocalAppProcess.StartAsync(Settings(database), Patience));

        Assert.Contains("Local__DatabasePath", failure.Message);
        Assert.Contains("is not a SQLite database", failure.Message);
        Assert.DoesNotContain("writable file", failure.Message);
    }
}
