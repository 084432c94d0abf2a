#!/bin/sh
# azd postdeploy hook: subscribe the Event Grid-sourced blob triggers (audio_intake on
# INPUT_CONTAINER, bulk_intake on REQUESTS_CONTAINER) to BlobCreated events by deploying
# infra/app/eventgrid-subscriptions.bicep. It runs after deploy because Event Grid validates a
# webhook when the subscription is created, and because the webhook needs the host's
# blobs_extension system key, which exists only once the deployed host has started. The key is
# read with the signed-in user's Azure RBAC and handed over in a private temporary file, never
# on a command line. Idempotent: rerun with `azd hooks run postdeploy`.
set -eu

fail() {
  echo "postdeploy: $*" >&2
  exit 1
}

for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_FUNCTION_NAME \
  EVENT_GRID_SYSTEM_TOPIC_NAME INPUT_CONTAINER REQUESTS_CONTAINER; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || fail "$name is not set in the azd environment; run azd provision first"
done
command -v az > /dev/null 2>&1 || fail "the Azure CLI (az) is required; see README, Deploy to Azure"

# A freshly deployed host creates the key on its first start: ask for up to five minutes.
key=""
attempt=0
while [ -z "$key" ]; do
  key=$(az functionapp keys list --subscription "$AZURE_SUBSCRIPTION_ID" \
    --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_NAME" \
    --query systemKeys.blobs_extension --output tsv 2> /dev/null || true)
  if [ -z "$key" ]; then
    attempt=$((attempt + 1))
    [ "$attempt" -lt 30 ] || fail "no blobs_extension key after 5 minutes; check that $AZURE_FUNCTION_NAME started, then run: azd hooks run postdeploy"
    sleep 10
  fi
done

umask 077
parameters=$(mktemp)
trap 'rm -f "$parameters"' EXIT
printf '{"blobExtensionKey": {"value": "%s"}}\n' "$key" > "$parameters"

echo "postdeploy: subscribing audio_intake and bulk_intake to BlobCreated events"
az deployment group create --subscription "$AZURE_SUBSCRIPTION_ID" \
  --resource-group "$AZURE_RESOURCE_GROUP" --name eventgrid-subscriptions \
  --template-file "$(dirname "$0")/../app/eventgrid-subscriptions.bicep" \
  --parameters "@$parameters" \
  --parameters systemTopicName="$EVENT_GRID_SYSTEM_TOPIC_NAME" \
  functionAppName="$AZURE_FUNCTION_NAME" inputContainerName="$INPUT_CONTAINER" \
  requestsContainerName="$REQUESTS_CONTAINER" \
  --output none
echo "postdeploy: done"
