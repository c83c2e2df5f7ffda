// @ts-check
/**
 * TypeDoc plugin for `npm run docs`:
 * - names each entry point's module by its import path (`express-api-tokens`,
 *   `express-api-tokens/forward`, …) instead of its file name;
 * - warns about every exported function, class, variable, interface and type without an
 *   `@example` in its TSDoc (our rule: every exported symbol shows how it is used), and
 *   prints how many there are.
 */
import { Converter, ReflectionKind } from 'typedoc';

const TOP_LEVEL =
  ReflectionKind.Function |
  ReflectionKind.Class |
  ReflectionKind.Variable |
  ReflectionKind.Interface |
  ReflectionKind.TypeAlias |
  ReflectionKind.Enum;

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project;
    for (const module of project.getReflectionsByKind(ReflectionKind.Module)) {
      if (module.parent !== project) continue;
      module.name = module.name === 'index' ? project.name : `${project.name}/${module.name}`;
    }
  });

  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    let missing = 0;
    let total = 0;
    for (const reflection of context.project.getReflectionsByKind(TOP_LEVEL)) {
      if (!reflection.parent?.kindOf(ReflectionKind.Project | ReflectionKind.Module)) continue;
      total++;
      const comments = [reflection.comment, ...(reflection.signatures ?? []).map((s) => s.comment)];
      if (comments.some((comment) => comment?.getTag('@example') !== undefined)) continue;
      missing++;
      app.logger.warn(`${reflection.getFriendlyFullName()} has no @example`);
    }
    app.logger.info(`${missing} of ${total} exported symbols have no @example`);
  });
}
