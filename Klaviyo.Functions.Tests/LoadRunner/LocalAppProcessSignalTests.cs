using System.Diagnostics;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.LoadRunner;

/// <summary>How <see cref="LocalAppProcess.StopAsync"/> picks its signal: a process that inherited SIGINT ignored (started
/// from a background job of a non-interactive shell) would never stop on Ctrl+C and print no summary.</summary>
[TestClass]
public sealed class LocalAppProcessSignalTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow("exec sleep 30", false)]
    [DataRow("trap '' INT; exec sleep 30", true)]
    public async Task IgnoresSigint_ProcessStartedWithOrWithoutSigintIgnored_ReadFromItsStatus(string script, bool expected)
    {
        using var process = Process.Start(new ProcessStartInfo("bash") { ArgumentList = { "-c", script }, UseShellExecute = false })!;
        try
        {
            await Task.Delay(300, TestContext.CancellationToken);

            // A test run that itself inherited SIGINT ignored passes it on to every child.
            Assert.AreEqual(expected || LocalAppProcess.IgnoresSigint(Environment.ProcessId), LocalAppProcess.IgnoresSigint(process.Id));
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync(TestContext.CancellationToken);
        }
    }
}
