import { escapeRegExp } from '../internal/regexp.js';

/**
 * The grammar of `resources` restrictions: `PROJ` (a project and all its repositories),
 * `PROJ/repo`, `~user` (a personal project), `~user/repo`, with `*` as a wildcard inside a
 * segment. Project keys and user names compare case-insensitively, and so do repository slugs
 * (Bitbucket keeps them lower case and resolves them without regard to case).
 */

const PROJECT_KEY = /^[A-Za-z0-9_*]{1,128}$/;
const USER_SLUG = /^[A-Za-z0-9_.@*-]{1,255}$/;
const REPO_SLUG = /^[A-Za-z0-9_.*-]{1,128}$/;

export interface ResourcePattern {
  /** `PROJ` or `~user` (canonical: key upper case, user lower case). */
  project: string;
  /** The repository slug pattern, lower case; undefined for a whole project. */
  repo?: string;
}

/** Parses one pattern into its canonical form, or throws an Error saying what is wrong. */
export function parseResourcePattern(text: string): ResourcePattern {
  const parts = text.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    throw new Error('must be PROJ, PROJ/repo, ~user or ~user/repo');
  }
  const [projectPart, repoPart] = parts as [string, string | undefined];
  let project: string;
  if (projectPart.startsWith('~')) {
    if (!USER_SLUG.test(projectPart.slice(1)))
      throw new Error(`${JSON.stringify(projectPart)} is not a user name`);
    project = projectPart.toLowerCase();
  } else {
    if (!PROJECT_KEY.test(projectPart))
      throw new Error(`${JSON.stringify(projectPart)} is not a project key`);
    project = projectPart.toUpperCase();
  }
  if (repoPart === undefined) return { project };
  if (!REPO_SLUG.test(repoPart) || repoPart === '.' || repoPart === '..')
    throw new Error(`${JSON.stringify(repoPart)} is not a repository slug`);
  return { project, repo: repoPart.toLowerCase() };
}

export function resourcePatternText(pattern: ResourcePattern): string {
  return pattern.repo === undefined ? pattern.project : `${pattern.project}/${pattern.repo}`;
}

function segmentMatcher(pattern: string): (value: string) => boolean {
  if (!pattern.includes('*')) {
    const lower = pattern.toLowerCase();
    return (value) => value.toLowerCase() === lower;
  }
  const source = pattern.split('*').map(escapeRegExp).join('[^/]*');
  const regex = new RegExp(`^${source}$`, 'i');
  return (value) => regex.test(value);
}

/** What a request touches: a project (`PROJ` or `~user`) and perhaps one of its repositories. */
export interface ResourceTarget {
  project: string;
  repo?: string;
}

/** Compiles canonical patterns into one test: may a request touch `target`? */
export function compileResourcePatterns(patterns: readonly string[]): (target: ResourceTarget) => boolean {
  const rules = patterns.map((text) => {
    const pattern = parseResourcePattern(text);
    const personal = pattern.project.startsWith('~');
    return {
      personal,
      project: segmentMatcher(personal ? pattern.project.slice(1) : pattern.project),
      repo: pattern.repo === undefined ? undefined : segmentMatcher(pattern.repo),
    };
  });
  return (target) => {
    const personal = target.project.startsWith('~');
    const project = personal ? target.project.slice(1) : target.project;
    return rules.some(
      (rule) =>
        // A personal project only ever matches a `~` pattern, and a `~` pattern only a personal project.
        rule.personal === personal &&
        rule.project(project) &&
        (rule.repo === undefined || (target.repo !== undefined && rule.repo(target.repo))),
    );
  };
}
