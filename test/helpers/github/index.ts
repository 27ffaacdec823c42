/** The local GitHub API server for tests (see server.ts). */
export { barrier, startGitHubServer, MAX_COMMENT_CHARS, type GitHubServer, type GitHubServerOptions, type RecordedRequest } from './server.js';
export type { Annotation, ChangedFile, CheckRun, GitHubState, IssueComment, PullRequest } from './server.js';
