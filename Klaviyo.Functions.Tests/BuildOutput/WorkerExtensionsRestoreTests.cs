using System.Diagnostics;

namespace Klaviyo.Functions.Tests.BuildOutput;

/// <summary>A newcomer's first build prints no NuGet warning from the Functions SDK's generated worker-extension project
/// (obj/…/WorkerExtensions), which the SDK restores with Directory.Build.props switched off.</summary>
[TestClass]
public sealed class WorkerExtensionsRestoreTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task GeneratedWorkerExtensionsProject_RestoredAsTheBuildDoes_PrintsNoNuGetWarning()
    {
        var project = Path.Combine(BuildOutputFiles.RepoRoot(), "Klaviyo.Functions", "Klaviyo.Functions.csproj");
        var built = Path.Combine(BuildOutputFiles.RepoRoot(), "Klaviyo.Functions", "obj", "Release", "net10.0", "WorkerExtensions", "WorkerExtensions.csproj");
        Assert.IsTrue(File.Exists(built), "build the app first (dotnet build -c Release): the SDK generates " + built);
        var generated = Directory.CreateTempSubdirectory("relay-worker-extensions-").FullName;
        File.Copy(built, Path.Combine(generated, "WorkerExtensions.csproj"));
        try
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            // The SDK's own restore target, on a copy of the project it generated (so the build's obj/ is left alone),
            // forced so the restore really runs and reports what it resolved.
            foreach (var arg in new[] { "msbuild", project, "-t:_WorkerExtensionsRestore", "-p:Configuration=Release", $"-p:ExtensionsCsProjDirectory={generated}", "-p:RestoreForce=true", "-nologo", "-nodeReuse:false" })
            {
                info.ArgumentList.Add(arg);
            }
            info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync(TestContext.CancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(TestContext.CancellationToken);
            await process.WaitForExitAsync(TestContext.CancellationToken);
            var output = await stdout + await stderr;

            Assert.AreEqual(0, process.ExitCode, output);
            Assert.Contains("Restored " + Path.Combine(generated, "WorkerExtensions.csproj"), output, "the generated project was restored");
            Assert.DoesNotContain("warning NU", output);
        }
        finally
        {
            Directory.Delete(generated, recursive: true);
        }
    }
}
