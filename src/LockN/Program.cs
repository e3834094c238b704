using System.CommandLine;
using LockN.Cli;
using LockN.Hosting;

var configuration = LockNConfiguration.Build();
var root = new RootCommand("LockN: a self-hosted, OpenAI-compatible speech service")
{
    ServeCommand.Create(),
    TranscribeCommand.Create(configuration),
    ClassifyCommand.Create(configuration),
    StreamCommand.Create(configuration),
    ModelsCommand.Create(configuration),
    KeysCommand.Create(configuration),
    UsageCommand.Create(configuration),
    WorkerCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
