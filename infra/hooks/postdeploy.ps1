# azd postdeploy hook (Windows): the same steps as postdeploy.sh. Subscribes the Event
# Grid-sourced blob triggers (audio_intake, bulk_intake) to BlobCreated events by deploying
# infra/app/eventgrid-subscriptions.bicep with the host's blobs_extension key, read with the
# signed-in user's Azure RBAC and handed over in a private temporary file.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Fail([string] $message) {
    Write-Error "postdeploy: $message" -ErrorAction Continue
    exit 1
}

foreach ($name in 'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_NAME',
    'EVENT_GRID_SYSTEM_TOPIC_NAME', 'INPUT_CONTAINER', 'REQUESTS_CONTAINER') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Fail "$name is not set in the azd environment; run azd provision first"
    }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Fail 'the Azure CLI (az) is required; see README, Deploy to Azure'
}

# A freshly deployed host creates the key on its first start: ask for up to five minutes.
$key = ''
for ($attempt = 1; -not $key; $attempt++) {
    $key = az functionapp keys list --subscription $env:AZURE_SUBSCRIPTION_ID `
        --resource-group $env:AZURE_RESOURCE_GROUP --name $env:AZURE_FUNCTION_NAME `
        --query systemKeys.blobs_extension --output tsv 2>$null
    if (-not $key) {
        if ($attempt -ge 30) {
            Fail "no blobs_extension key after 5 minutes; check that $env:AZURE_FUNCTION_NAME started, then run: azd hooks run postdeploy"
        }
        Start-Sleep -Seconds 10
    }
}

$parameters = New-TemporaryFile
try {
    # New-TemporaryFile lives in the user's own temp directory.
    @{ blobExtensionKey = @{ value = "$key".Trim() } } | ConvertTo-Json | Set-Content -Path $parameters -Encoding utf8
    Write-Host 'postdeploy: subscribing audio_intake and bulk_intake to BlobCreated events'
    az deployment group create --subscription $env:AZURE_SUBSCRIPTION_ID `
        --resource-group $env:AZURE_RESOURCE_GROUP --name eventgrid-subscriptions `
        --template-file (Join-Path $PSScriptRoot '../app/eventgrid-subscriptions.bicep') `
        --parameters "@$parameters" `
        --parameters systemTopicName=$env:EVENT_GRID_SYSTEM_TOPIC_NAME `
        functionAppName=$env:AZURE_FUNCTION_NAME inputContainerName=$env:INPUT_CONTAINER `
        requestsContainerName=$env:REQUESTS_CONTAINER `
        --output none
    if ($LASTEXITCODE -ne 0) { Fail 'az deployment group create failed' }
}
finally {
    Remove-Item -Path $parameters -Force
}
Write-Host 'postdeploy: done'
