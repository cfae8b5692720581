using System.Text.Json.Nodes;

namespace Klaviyo.Functions.Tests.Infra;

/// <summary>Issue 18 item 8: after <c>azd down</c> without <c>--purge</c> the soft-deleted vault keeps its name, and the
/// next <c>azd up</c> failed on it. The templates now take a create mode (recover) wired to an azd variable, and the
/// docs/operating-in-azure.md (linked from README) says how to purge or recover. (Azure cannot be reached here: the wiring is checked in the files.)</summary>
[TestClass]
public sealed class KeyVaultRedeployTests
{
    [TestMethod]
    public void KeyVault_CreateMode_FlowsFromTheAzdVariableToTheVault()
    {
        var parameters = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "infra", "main.parameters.json")))!;
        var main = File.ReadAllText(Path.Combine(RepoRoot(), "infra", "main.bicep"));
        var vault = File.ReadAllText(Path.Combine(RepoRoot(), "infra", "modules", "keyvault.bicep"));

        Assert.AreEqual("${KEY_VAULT_CREATE_MODE=default}", (string?)parameters["parameters"]!["keyVaultCreateMode"]!["value"]);
        Assert.Contains("param keyVaultCreateMode string = 'default'", main);
        Assert.Contains("createMode: keyVaultCreateMode", main);
        Assert.Contains("param createMode string = 'default'", vault);
        Assert.Contains("    createMode: createMode\n", vault.ReplaceLineEndings("\n"));
        foreach (var template in new[] { main, vault })
        {
            Assert.Contains("@allowed([\n  'default'\n  'recover'\n])", template.ReplaceLineEndings("\n"));
        }
    }

    [TestMethod]
    public void Readme_SaysHowToTearDownAndDeployAgain()
    {
        var readme = File.ReadAllText(Path.Combine(RepoRoot(), "docs", "operating-in-azure.md"));

        Assert.Contains("azd down --purge", readme);
        Assert.Contains("az keyvault purge --name <keyVaultName>", readme);
        Assert.Contains("azd env set KEY_VAULT_CREATE_MODE recover && azd up", readme);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Klaviyo.Functions.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException("Klaviyo.Functions.sln not found above the test output.");
    }
}
