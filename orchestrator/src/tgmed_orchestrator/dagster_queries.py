"""The GraphQL documents DagsterClient sends that dagster-graphql's client lacks (what
the UI reads: the workspace, a run, its events, the asset catalog, a job's runs)."""

WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name jobs { name } } }
          ... on PythonError { message }
        }
      }
    }
  }
}"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { runId status startTime endTime } }
}"""
EVENTS = """
query Events($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 5000) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message timestamp level stepKey }
        ... on ExecutionStepFailureEvent { error { message causes { message } } }
        ... on ExecutionStepUpForRetryEvent { error { message causes { message } } }
      }
    }
    ... on PythonError { message }
  }
}"""
ASSETS = """
{
  assetNodes {
    assetKey { path }
    assetMaterializations(limit: 1) { runId metadataEntries { label __typename } }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status runId } } }
    }
  }
}"""
JOB_RUNS = """
query JobRuns($job: String!, $location: String!, $repository: String!) {
  pipelineOrError(params: {
    pipelineName: $job, repositoryName: $repository, repositoryLocationName: $location
  }) {
    __typename
    ... on Pipeline { runs(limit: 5) { runId status jobName } }
    ... on PipelineNotFoundError { message }
    ... on PythonError { message }
  }
}"""
RUNS = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}, limit: 5) {
    __typename
    ... on Runs { results { runId status jobName } }
    ... on PythonError { message }
  }
}"""
