using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Extensions.Abstractions;

namespace Klaviyo.Functions.Tests.BuildOutput;

/// <summary>
/// The publish guard (<c>Klaviyo.Functions/Deployability.targets</c>, run by <c>dotnet publish</c>) on the real build
/// output and on copies of it. On this machine the Service Bus worker extension is the offline compile-surface
/// stand-in, so the real output is not deployable and the guard must refuse it; with the real package from the
/// public feed the same test expects the guard to pass.
/// </summary>
[TestClass]
public sealed class PublishGuardTests
{
    private const string HostExtension = "Microsoft.Azure.WebJobs.Extensions.ServiceBus";

    public TestContext TestContext { get; set; } = null!;

    /// <summary>The real worker extension names its host extension in an <c>ExtensionInformation</c> attribute; the stand-in has none.</summary>
    private static bool WorkerExtensionIsStandIn() =>
        !typeof(ServiceBusTriggerAttribute).Assembly.GetCustomAttributes<ExtensionInformationAttribute>()
            .Any(a => a.ExtensionPackage == HostExtension);

    [TestMethod]
    public async Task RealBuildOutput_GuardVerdict_MatchesWhichServiceBusExtensionWasRestored()
    {
        var dir = BuildOutputFiles.Directory();
        var listsHostExtension = BuildOutputFiles.Extensions().Any(e => ((string?)e!["typeName"])?.Contains(HostExtension, StringComparison.Ordinal) == true);
        var (exitCode, output) = await RunGuardAsync(dir);

        if (WorkerExtensionIsStandIn())
        {
            TestContext.WriteLine($"Stand-in detected: {typeof(ServiceBusTriggerAttribute).Assembly.Location} carries no ExtensionInformation for {HostExtension}; "
                                  + $"{dir} is NOT deployable, and the publish guard refuses it (as it must).");
            Assert.IsFalse(listsHostExtension, "a stand-in build cannot list the host extension");
            Assert.AreNotEqual(0, exitCode, output);
            Assert.Contains("error RELAY003: Not deployable, publish refused", output);
            Assert.Contains($"does not list the Service Bus host extension ({HostExtension})", output);
            Assert.Contains("lacks \"properties\": {\"supportsDeferredBinding\": \"True\"}", output);
            Assert.Contains("offline compile-surface stand-in", output);
        }
        else
        {
            TestContext.WriteLine($"Real Service Bus worker extension restored: {dir} must be deployable.");
            Assert.IsTrue(listsHostExtension, $"extensions.json should list {HostExtension}");
            Assert.AreEqual(0, exitCode, output);
        }
    }

    [TestMethod]
    public async Task Guard_OutputWithHostExtensionAndDeferredBinding_Passes()
    {
        using var copy = DeployableCopy();

        var (exitCode, output) = await RunGuardAsync(copy.Path);

        Assert.AreEqual(0, exitCode, output);
        Assert.Contains("Deployable:", output);
    }

    [TestMethod]
    public async Task Guard_TriggerWithoutDeferredBinding_RefusesNamingTheBinding()
    {
        using var copy = DeployableCopy(deferredBinding: false);

        var (exitCode, output) = await RunGuardAsync(copy.Path);

        Assert.AreNotEqual(0, exitCode, output);
        Assert.Contains("serviceBusTrigger binding", output);
        Assert.DoesNotContain("does not list the Service Bus host extension", output);
    }

    [TestMethod]
    public async Task Guard_ExtensionsJsonWithoutServiceBus_RefusesNamingTheExtension()
    {
        using var copy = DeployableCopy(hostExtension: false);

        var (exitCode, output) = await RunGuardAsync(copy.Path);

        Assert.AreNotEqual(0, exitCode, output);
        Assert.Contains($"does not list the Service Bus host extension ({HostExtension})", output);
        Assert.DoesNotContain("supportsDeferredBinding", output);
    }

    /// <summary>A copy of the real output's host files, made to look like a build with the real package: the host
    /// extension listed and shipped, the trigger with deferred binding (as the SDK writes it for the real attribute).</summary>
    private static TempDir DeployableCopy(bool hostExtension = true, bool deferredBinding = true)
    {
        var source = BuildOutputFiles.Directory();
        var temp = new TempDir();
        var extensions = BuildOutputFiles.Extensions();
        if (hostExtension)
        {
            extensions.Add(new JsonObject
            {
                ["name"] = "ServiceBus",
                ["typeName"] = $"Microsoft.Azure.WebJobs.ServiceBus.ServiceBusWebJobsStartup, {HostExtension}, Version=5.17.0.0, Culture=neutral, PublicKeyToken=92742159e12e44c8",
            });
            Directory.CreateDirectory(Path.Combine(temp.Path, ".azurefunctions"));
            File.WriteAllBytes(Path.Combine(temp.Path, ".azurefunctions", HostExtension + ".dll"), []);
        }
        File.WriteAllText(Path.Combine(temp.Path, "extensions.json"), new JsonObject { ["extensions"] = extensions.DeepClone() }.ToJsonString(Indented));

        var metadata = BuildOutputFiles.FunctionsMetadata();
        foreach (var binding in metadata.SelectMany(f => f!["bindings"]!.AsArray()).Select(b => b!.AsObject()))
        {
            if ((string?)binding["type"] == "serviceBusTrigger" && deferredBinding)
            {
                binding["properties"] = new JsonObject { ["supportsDeferredBinding"] = "True" };
            }
        }
        File.WriteAllText(Path.Combine(temp.Path, "functions.metadata"), metadata.ToJsonString(Indented));
        Assert.IsTrue(File.Exists(Path.Combine(source, "functions.metadata")));
        return temp;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private async Task<(int ExitCode, string Output)> RunGuardAsync(string dir)
    {
        var targets = Path.Combine(BuildOutputFiles.RepoRoot(), "Klaviyo.Functions", "Deployability.targets");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "msbuild", targets, "-t:RelayCheckDeployable", $"-p:RelayDeployableDir={dir}", "-nologo", "-nodeReuse:false" })
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.CancellationToken);
        await process.WaitForExitAsync(TestContext.CancellationToken);
        return (process.ExitCode, await stdout + await stderr);
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("relay-guard-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
