/** The MongoDB drill: a throwaway mongod, mongorestore into it, documents counted per collection. (Being written.) */

import type { RestoreForDrill } from "./drill";

export const restoreMongoForDrill: RestoreForDrill = async () => {
  throw new Error("the MongoDB drill is not written yet");
};
