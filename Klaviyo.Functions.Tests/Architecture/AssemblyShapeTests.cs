using System.Reflection;
using System.Reflection.Emit;
using Klaviyo.Functions.Ingest;

namespace Klaviyo.Functions.Tests.Architecture;

/// <summary>The app's shape: internal by default, and namespaces that depend on each other one way only. The
/// dependency graph is read from the compiled assembly (signatures and the types, methods and fields each method
/// body refers to), so a cycle through a method body counts too; constants are inlined by the compiler and do not.</summary>
[TestClass]
public sealed class AssemblyShapeTests
{
    private const string Root = "Klaviyo.Functions";
    private static readonly Assembly App = typeof(IngestFunction).Assembly;

    /// <summary>Public types the app does not declare: the Functions worker SDK's source generator emits these
    /// (the host finds the functions through them), and ASP.NET Core's generator makes the top-level Program public.</summary>
    private static readonly string[] GeneratedPublicTypes =
    [
        "Klaviyo.Functions.FunctionExecutorAutoStartup",
        "Klaviyo.Functions.FunctionExecutorHostBuilderExtensions",
        "Klaviyo.Functions.FunctionMetadataProviderAutoStartup",
        "Klaviyo.Functions.GeneratedFunctionMetadataProvider",
        "Klaviyo.Functions.WorkerHostBuilderFunctionMetadataProviderExtension",
        "Program",
    ];

    [TestMethod]
    public void PublicTypes_AreExactlyTheFunctionClasses()
    {
        var functionClasses = App.GetTypes()
            .Where(t => t.GetMethods().Any(m => m.GetCustomAttributes().Any(a => a.GetType().Name == "FunctionAttribute")))
            .Select(t => t.FullName!)
            .Order()
            .ToArray();
        var publicTypes = App.GetExportedTypes().Select(t => t.FullName!).Except(GeneratedPublicTypes).Order().ToArray();

        Assert.AreSequenceEqual(
            new[] { "Klaviyo.Functions.Health.HealthFunction", "Klaviyo.Functions.Ingest.IngestFunction", "Klaviyo.Functions.Relay.RelayFunction", "Klaviyo.Functions.Relay.ReplayDeadLettersFunction" },
            publicTypes,
            "public types: " + string.Join(", ", publicTypes));
        Assert.AreSequenceEqual(functionClasses, publicTypes);
    }

    [TestMethod]
    public void Namespaces_HaveNoCycles()
    {
        var graph = NamespaceGraph();
        var cycle = FindCycle(graph);

        Assert.IsNull(cycle, cycle is null ? null : "namespace cycle: " + string.Join(" -> ", cycle) + Evidence(graph, cycle));
    }

    [TestMethod]
    public void Transform_ReachesNoServiceBusNorFunctionsHostCode()
    {
        // The pure transform and everything it depends on, directly or through other namespaces (Klaviyo, Diagnostics…).
        var graph = NamespaceGraph();
        var reachable = new HashSet<string> { Root + ".Transform" };
        var pending = new Queue<string>(reachable);
        while (pending.TryDequeue(out var from))
        {
            foreach (var to in graph.GetValueOrDefault(from)?.Keys ?? Enumerable.Empty<string>())
            {
                if (reachable.Add(to))
                {
                    pending.Enqueue(to);
                }
            }
        }

        var offenders = App.GetTypes()
            .Where(t => NamespaceOf(t) is { } ns && reachable.Contains(ns))
            .SelectMany(t => UsedTypes(t)
                .Where(u => u.Used.Namespace is { } ns && (ns.StartsWith("Azure.Messaging.ServiceBus", StringComparison.Ordinal) || ns.StartsWith("Microsoft.Azure.Functions.Worker", StringComparison.Ordinal)))
                .Select(u => $"{t.FullName} {u.How} {u.Used.FullName}"))
            .Distinct()
            .ToList();

        Assert.DoesNotContain(Root + ".Queue", reachable, "the transform reaches the queue: " + string.Join(", ", reachable.Order()));
        Assert.IsEmpty(offenders, string.Join("; ", offenders.Take(5)));
    }

    [TestMethod]
    public void FindCycle_TwoNamespacesUsingEachOther_ReportsTheCycle()
    {
        var graph = new Dictionary<string, Dictionary<string, string>>
        {
            ["A"] = new() { ["B"] = "A.X uses B.Y" },
            ["B"] = new() { ["C"] = "B.Y uses C.Z" },
            ["C"] = new() { ["A"] = "C.Z uses A.X" },
        };

        Assert.AreSequenceEqual(new[] { "A", "B", "C", "A" }, FindCycle(graph));
        graph["C"].Clear();
        Assert.IsNull(FindCycle(graph));
    }

    private static string Evidence(Dictionary<string, Dictionary<string, string>> graph, List<string> cycle) =>
        string.Concat(cycle.Zip(cycle.Skip(1), (from, to) => $"; {graph[from][to]}"));

    private static List<string>? FindCycle(Dictionary<string, Dictionary<string, string>> graph)
    {
        var state = new Dictionary<string, int>();
        var path = new List<string>();

        List<string>? Visit(string node)
        {
            state[node] = 1;
            path.Add(node);
            foreach (var next in graph.GetValueOrDefault(node)?.Keys.Order() ?? Enumerable.Empty<string>())
            {
                if (state.GetValueOrDefault(next) == 1)
                {
                    return [.. path.Skip(path.IndexOf(next)), next];
                }

                if (state.GetValueOrDefault(next) == 0 && Visit(next) is { } found)
                {
                    return found;
                }
            }

            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }

        foreach (var node in graph.Keys.Order())
        {
            if (state.GetValueOrDefault(node) == 0 && Visit(node) is { } cycle)
            {
                return cycle;
            }
        }

        return null;
    }

    /// <summary>namespace → namespace it uses → one example of the use.</summary>
    private static Dictionary<string, Dictionary<string, string>> NamespaceGraph()
    {
        var graph = new Dictionary<string, Dictionary<string, string>>();
        foreach (var type in App.GetTypes())
        {
            var from = NamespaceOf(type);
            if (from is null)
            {
                continue;
            }

            foreach (var (used, how) in UsedTypes(type))
            {
                var to = NamespaceOf(used);
                if (to is not null && to != from)
                {
                    var edges = graph.TryGetValue(from, out var e) ? e : graph[from] = [];
                    edges.TryAdd(to, $"{type.FullName} {how} {used.FullName}");
                }
            }
        }

        return graph;
    }

    /// <summary>The namespace a type belongs to (a nested or compiler-generated type belongs to its outermost type's),
    /// or null outside the app's own namespaces (generated code such as the Functions executor, Program).</summary>
    private static string? NamespaceOf(Type type)
    {
        while (type.IsGenericType && !type.IsGenericTypeDefinition)
        {
            type = type.GetGenericTypeDefinition();
        }

        while (type.DeclaringType is { } outer)
        {
            type = outer;
        }

        var name = type.Namespace;
        if (name is null || !(name == Root || name.StartsWith(Root + ".", StringComparison.Ordinal))
            || type.Name.StartsWith("Generated", StringComparison.Ordinal) || type.Name.Contains("WorkerExtension", StringComparison.Ordinal))
        {
            return null;
        }

        return name;
    }

    private static IEnumerable<(Type Used, string How)> UsedTypes(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var found = new List<(Type, string)>();
        void Add(Type? t, string how)
        {
            if (t is null)
            {
                return;
            }

            if (t.HasElementType)
            {
                Add(t.GetElementType(), how);
                return;
            }

            found.Add((t, how));
            if (t.IsGenericType && !t.IsGenericTypeDefinition)
            {
                foreach (var arg in t.GetGenericArguments())
                {
                    Add(arg, how);
                }
            }
        }

        Add(type.BaseType, "derives from");
        foreach (var i in type.GetInterfaces())
        {
            Add(i, "implements");
        }

        foreach (var field in type.GetFields(all))
        {
            Add(field.FieldType, "has a field of");
        }

        foreach (var property in type.GetProperties(all))
        {
            Add(property.PropertyType, "has a property of");
        }

        foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
        {
            if (method is MethodInfo info)
            {
                Add(info.ReturnType, "returns");
            }

            foreach (var parameter in method.GetParameters())
            {
                Add(parameter.ParameterType, "takes");
            }

            foreach (var member in BodyReferences(method))
            {
                Add(member as Type ?? member.DeclaringType, $"calls ({method.Name} uses {member.Name})");
            }
        }

        return found;
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>The types, methods and fields a method body names (read from its IL).</summary>
    private static IEnumerable<MemberInfo> BodyReferences(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            yield break;
        }

        var typeArgs = method.DeclaringType!.IsGenericType ? method.DeclaringType.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var i = 0;
        while (i < il.Length)
        {
            var value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            switch (op.OperandType)
            {
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    var token = BitConverter.ToInt32(il, i);
                    MemberInfo? member = null;
                    try
                    {
                        member = method.Module.ResolveMember(token, typeArgs, methodArgs);
                    }
                    catch (ArgumentException)
                    {
                    }

                    if (member is not null)
                    {
                        yield return member;
                    }

                    i += 4;
                    break;
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    i += 1;
                    break;
                case OperandType.InlineVar:
                    i += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    i += 8;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + (4 * BitConverter.ToInt32(il, i));
                    break;
                default:
                    i += 4;
                    break;
            }
        }
    }
}
